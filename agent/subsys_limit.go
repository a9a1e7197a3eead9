package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vda-io/vda/spdk"
)

// subsystemCreateErr says what an nvmf_create_subsystem refusal of a new,
// well-formed NQN means: SPDK v24.01 answers "Unable to create subsystem"
// (-32603) when the target already holds its max_subsystems, 1,024 unless
// nvmf_set_max_subsystems said otherwise before framework_start_init, the
// discovery subsystem among them. A disk node needs one per VD, a
// controller node one per exporter of each array; the operator sees this
// in the part's error.
func subsystemCreateErr(err error) error {
	var se *spdk.Error
	if errors.As(err, &se) && se.Code == spdk.CodeInternalError && strings.HasPrefix(se.Message, "Unable to create subsystem") {
		return fmt.Errorf("%w: SPDK holds at most max_subsystems NVMe-oF subsystems (1,024 by default, "+
			"discovery included); start spdk_tgt with nvmf_set_max_subsystems before framework_start_init", err)
	}
	return err
}
