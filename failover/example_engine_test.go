package failover_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vda-io/vda/failover"
)

// alwaysLeader is the Leadership of a product that runs one engine for the
// whole cluster: it owns every node, forever.
type alwaysLeader struct{}

func (alwaysLeader) Owns(string) bool                              { return true }
func (alwaysLeader) Fence(context.Context) (failover.Fence, error) { return nil, nil }
func (alwaysLeader) Changed() <-chan struct{}                      { return nil } // never changes

// refusingProber: node cn0 is gone, the others answer.
type refusingProber struct{}

func (refusingProber) Probe(_ context.Context, node string) failover.Observation {
	if node == "cn0" {
		return failover.Observation{Miss: failover.Refused, Err: errors.New("connection refused")}
	}
	return failover.Observation{OK: true, Instance: node}
}

// memActuator keeps one array in memory; a product's would write its own
// store, and its push path would then fence and promote.
type memActuator struct {
	mu sync.Mutex
	da failover.Array
}

func (a *memActuator) Load(context.Context) (*failover.View, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &failover.View{
		Nodes:  []failover.NodeInfo{{ID: "cn0", Location: "rack0"}, {ID: "cn1", Location: "rack1"}},
		Arrays: []failover.Array{a.da},
	}, nil
}

func (a *memActuator) Commit(_ context.Context, _ failover.Fence, moves []failover.Move) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range moves {
		a.da.Controllers, a.da.Epoch = m.Decision.Apply(a.da.Controllers), m.Decision.Epoch
	}
	return nil
}

// An engine embedded with a leadership of its own: it probes the nodes,
// fails cn0 (its probes are refused) and moves da0's primary to cn1.
func ExampleEngine() {
	act := &memActuator{da: failover.Array{ID: "da0", Name: "da0", Epoch: 1, Controllers: []failover.Controller{
		{ID: "c0", Idx: 0, CNID: "cn0", Primary: true}, {ID: "c1", Idx: 1, CNID: "cn1"}}}}
	e, err := failover.NewEngine(failover.EngineConfig{
		Health: failover.Config{Interval: 10 * time.Millisecond, MissThreshold: 3, Window: 100 * time.Millisecond,
			SlowTimeout: time.Second},
		Prober:     refusingProber{},
		Leadership: alwaysLeader{},
		Actuator:   act,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	for ev := range e.Events() {
		if ev.Kind == failover.NodeFailed {
			fmt.Printf("%s failed (%s)\n", ev.Node, ev.Transition.Cause)
		}
		if ev.Kind == failover.ArrayFailedOver {
			fmt.Printf("%s: primary moved to %s, epoch %d\n", ev.ArrayName, ev.Decision.NewPrimary.CNID, ev.Decision.Epoch)
			break
		}
	}
	cancel()
	<-done
	// Output:
	// cn0 failed (refused)
	// da0: primary moved to cn1, epoch 2
}
