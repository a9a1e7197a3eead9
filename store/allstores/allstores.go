package allstores

import (
	_ "github.com/vda-io/vda/store/etcdembed"         // embedded://
	_ "github.com/vda-io/vda/store/etcdstore"         // etcd://
	_ "github.com/vda-io/vda/store/memstore"          // memory://
	_ "github.com/vda-io/vda/store/sqlstore/mysql"    // mysql://
	_ "github.com/vda-io/vda/store/sqlstore/postgres" // postgresql://, postgres://
	_ "github.com/vda-io/vda/store/sqlstore/sqlite"   // sqlite://
)
