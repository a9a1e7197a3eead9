package agent

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// A disk node whose SPDK is out of subsystems (max_subsystems 3: the
// discovery subsystem and two VDs) reports the third VD failed with what
// to do, and the others serve.
func TestDNSubsystemLimitSaysWhatToDo(t *testing.T) {
	ctx := context.Background()
	fake := spdktest.NewServer(t, spdktest.WithWaitForRPC())
	c, err := spdk.Dial(ctx, fake.SockPath())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: new(false)}))
	require.NoError(t, c.NvmfSetMaxSubsystems(ctx, spdk.NvmfSetMaxSubsystemsParams{MaxSubsystems: 3}))
	require.NoError(t, c.FrameworkStartInit(ctx))
	e := &dnEnv{t: t, fake: fake, c: c, listener: testListener(t, fake)}
	e.dn = newDNNode(c, e.listener, nil)
	e.dn.aio = aioPolicy{dirs: []string{os.TempDir()}, labels: []LvstoreLabelReader{SPDKLvstoreLabel, blockdev.LvstoreName}}

	st := dnState(1, 3, nvmeof.NewID(), nvmeof.NewID(), 1)
	out := e.sync(st)
	failed := failedStatuses(out)
	require.Len(t, failed, 1, "%v", out)
	require.Equal(t, agentpb.Kind_KIND_VD, failed[0].Kind)
	require.Contains(t, failed[0].Error, "Unable to create subsystem")
	require.Contains(t, failed[0].Error, "start spdk_tgt with nvmf_set_max_subsystems before framework_start_init")
}
