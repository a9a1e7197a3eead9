package nvmeof_test

import (
	"fmt"

	"github.com/vda-io/vda/nvmeof"
)

func ExampleExpNQN() {
	n, err := nvmeof.ExpNQN("da0", "exp0")
	if err != nil {
		panic(err)
	}
	fmt.Println(n)

	// A '-' inside a name is doubled, so these two pairs stay distinct.
	a, _ := nvmeof.ExpNQN("a-b", "c")
	b, _ := nvmeof.ExpNQN("a", "b-c")
	fmt.Println(a)
	fmt.Println(b)

	da, exp, err := nvmeof.DecodeExpNQN(a)
	fmt.Println(da, exp, err)
	// Output:
	// nqn.2016-06.io.spdk:vda-exp-da0-exp0
	// nqn.2016-06.io.spdk:vda-exp-a--b-c
	// nqn.2016-06.io.spdk:vda-exp-a-b--c
	// a-b c <nil>
}

func ExampleParseListenerConf() {
	id, err := nvmeof.ParseListenerConf(`{"trtype":"TCP","traddr":"192.168.0.14","adrfam":"IPv4","trsvcid":"4420"}`)
	if err != nil {
		panic(err)
	}
	fmt.Println(id)
	fmt.Println(id.JSON())

	_, err = nvmeof.ParseListenerConf(`{"trtype":"tcp","traddr":"192.168.0.14","trsvcid":"70000"}`)
	fmt.Println(err)
	// Output:
	// tcp 192.168.0.14:4420
	// {"trtype":"tcp","traddr":"192.168.0.14","adrfam":"ipv4","trsvcid":"4420"}
	// nvmeof: invalid transport ID: trsvcid "70000" must be a decimal port 1-65535 without leading zeros
}

func ExampleParseName() {
	vdID := "0123456789abcdef0123456789abcdef"
	bdev := nvmeof.VDBdevName(vdID)
	fmt.Println(bdev, nvmeof.IsOwnedBdev(bdev), nvmeof.IsOwnedBdev("Malloc0"))
	n, ok := nvmeof.ParseName(bdev)
	fmt.Println(n.Kind, n.ID, n.NSID, ok)
	// Output:
	// vda-vdnvme-0123456789abcdef0123456789abcdefn1 true false
	// VD NVMe controller 0123456789abcdef0123456789abcdef 1 true
}

func ExampleControllerIDRange() {
	for i := range 3 {
		lo, hi, _ := nvmeof.ControllerIDRange(i)
		fmt.Printf("controller %d: min_cntlid %d max_cntlid %d\n", i, lo, hi)
	}
	_, _, err := nvmeof.ControllerIDRange(65)
	fmt.Println(err)
	// Output:
	// controller 0: min_cntlid 1 max_cntlid 1000
	// controller 1: min_cntlid 1001 max_cntlid 2000
	// controller 2: min_cntlid 2001 max_cntlid 3000
	// nvmeof: controller index out of range: 65 is not in 0..64
}
