package portaltest

import (
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
)

// WriteCerts creates a CA in dir and issues a portal's server certificate
// (vda://portal/portal, for 127.0.0.1, ::1 and localhost) and an operator's
// client certificate (vda://admin/admin), valid for a day. Each returned
// TLSConfig names its certificate, its key and the CA.
func WriteCerts(dir string) (server, client mtls.Config, err error) {
	ca, err := mtlstest.NewCA(dir)
	if err != nil {
		return server, client, err
	}
	if server, err = ca.Issue(mtls.RolePortal, "portal"); err != nil {
		return server, client, err
	}
	client, err = ca.Issue(mtls.RoleAdmin, "admin")
	return server, client, err
}
