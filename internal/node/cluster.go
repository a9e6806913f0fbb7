package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/keymesh/keymesh/internal/config"
)

// The shape of the cluster `keymesh dev` runs.
const (
	DevNodes     = 3
	DevThreshold = 2
)

// LoadOrInitDev returns the configs of the development cluster in dir: on
// the first run (no node-1.json in dir) it creates a DevNodes-node,
// DevThreshold-of-n cluster on 127.0.0.1 from basePort (config.Ports) and
// writes it there; afterwards it loads what is there, so identities, ports
// and data are kept from run to run. created reports which happened.
func LoadOrInitDev(dir string, basePort int) (cfgs []*config.Node, created bool, err error) {
	first := filepath.Join(dir, config.FileName(1))
	if _, err := os.Stat(first); errors.Is(err, fs.ErrNotExist) {
		nodes, err := config.InitCluster(config.InitOptions{
			Nodes: DevNodes, Threshold: DevThreshold, Out: dir,
			Host: "127.0.0.1", BasePort: basePort,
		})
		if err != nil {
			return nil, false, fmt.Errorf("node: dev cluster: %w", err)
		}
		if err := config.WriteCluster(dir, nodes); err != nil {
			return nil, false, fmt.Errorf("node: dev cluster: %w", err)
		}
		created = true
	} else if err != nil {
		return nil, false, fmt.Errorf("node: dev cluster: %w", err)
	}
	cfgs, err = LoadCluster(dir)
	if err != nil {
		return nil, false, err
	}
	return cfgs, created, nil
}

// LoadCluster loads node-1.json, node-2.json, … from dir, as written by
// config.WriteCluster, and checks that they describe one cluster.
func LoadCluster(dir string) ([]*config.Node, error) {
	var cfgs []*config.Node
	for id := uint16(1); ; id++ {
		path := filepath.Join(dir, config.FileName(id))
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			break
		}
		c, err := config.Load(path)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		if c.ID != id {
			return nil, fmt.Errorf("node: %s holds node %d", path, c.ID)
		}
		cfgs = append(cfgs, c)
	}
	if len(cfgs) == 0 {
		return nil, fmt.Errorf("node: no %s in %s", config.FileName(1), dir)
	}
	for _, c := range cfgs {
		if c.ClusterID != cfgs[0].ClusterID || c.N() != len(cfgs) {
			return nil, fmt.Errorf("node: the node files in %s do not describe one cluster of %d nodes", dir, len(cfgs))
		}
	}
	return cfgs, nil
}

// RunAll runs every node until ctx is cancelled or one of them fails (which
// stops the others), and returns when all have stopped, with their errors
// joined.
func RunAll(ctx context.Context, nodes []*Node) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			if errs[i] = n.Run(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
