package bench

import (
	"context"
	"fmt"
	"time"

	"orderflow/internal/app"
	"orderflow/providers/sim"
)

// Idle windows: how long an idle pod is measured, after a warm-up.
const (
	idleWarmup = 3 * time.Second
	idleWindow = 10 * time.Second
)

// IdleResult is what an idle worker pod (cmd/worker with both providers,
// no order) costs.
type IdleResult struct {
	// TaskCheckInterval is the pod's TASK_CHECK_INTERVAL.
	TaskCheckInterval time.Duration
	// CmdsPerSec: commands the server ran per second (those run by scripts
	// included), the bench's own INFO left out.
	CmdsPerSec float64
	// RedisCPU and WorkerCPU are fractions of a core: the redis-server's
	// (its own idle work left in: see Report.IdleBaselineCPU) and the
	// worker process's.
	RedisCPU, WorkerCPU float64
}

// idle: an idle cmd/worker process at the default TASK_CHECK_INTERVAL
// and at the former fixed 100ms, against the redis-server with no worker.
func (e *env) idle(ctx context.Context, rep *Report) error {
	bin, err := e.workerBinary(ctx)
	if err != nil {
		return err
	}
	s, err := startSim(sim.Config{})
	if err != nil {
		return err
	}
	defer s.Close()

	// Baseline: the server alone.
	before, err := e.stats(ctx)
	if err != nil {
		return err
	}
	if err := sleep(ctx, idleWindow/2); err != nil {
		return err
	}
	after, err := e.stats(ctx)
	if err != nil {
		return err
	}
	_, cpu, _, wall := before.delta(after)
	rep.IdleBaselineCPU = cpu / wall.Seconds()

	for _, iv := range []time.Duration{app.DefaultTaskCheckInterval, 100 * time.Millisecond} {
		r, err := e.idlePod(ctx, bin, s, iv)
		if err != nil {
			return fmt.Errorf("TASK_CHECK_INTERVAL=%s: %w", iv, err)
		}
		e.log.Info("idle pod", "task_check_interval", iv, "redis_cmds_per_s", r.CmdsPerSec,
			"redis_cpu", r.RedisCPU, "worker_cpu", r.WorkerCPU, "redis_alone_cpu", rep.IdleBaselineCPU)
		rep.Idle = append(rep.Idle, r)
	}
	return nil
}

// idlePod measures one idle worker process with TASK_CHECK_INTERVAL iv.
func (e *env) idlePod(ctx context.Context, bin string, s *sim.Sim, iv time.Duration) (IdleResult, error) {
	if err := e.flush(ctx); err != nil {
		return IdleResult{}, err
	}
	p, err := e.startProcess(bin, fmt.Sprintf("idle-%s", iv), []string{
		"REDIS_URL=" + e.redisURL(),
		"XPORTCN_BASE_URL=" + s.XportcnURL(), "XPORTCN_ACCESS_KEY=sim-ak",
		"XPORTCN_ACCESS_SECRET=sim-secret-x", "XPORTCN_USER_ID=sim-user",
		"DEPAL_BASE_URL=" + s.DepalURL(), "DEPAL_APP_KEY=simapp", "DEPAL_APP_SECRET=sim-secret-d",
		"TASK_CHECK_INTERVAL=" + iv.String(),
		"ADMIN_ADDR=127.0.0.1:0", "LOG_FORMAT=json",
	})
	if err != nil {
		return IdleResult{}, err
	}
	defer p.stop()
	if err := sleep(ctx, idleWarmup); err != nil {
		return IdleResult{}, err
	}
	select {
	case <-p.exited:
		return IdleResult{}, fmt.Errorf("the worker exited:\n%s", p.tail())
	default:
	}
	pid := p.cmd.Process.Pid
	w0, err := processCPU(pid)
	if err != nil {
		return IdleResult{}, err
	}
	before, err := e.stats(ctx)
	if err != nil {
		return IdleResult{}, err
	}
	calls0, err := e.commandCalls(ctx)
	if err != nil {
		return IdleResult{}, err
	}
	if err := sleep(ctx, idleWindow); err != nil {
		return IdleResult{}, err
	}
	calls1, err := e.commandCalls(ctx)
	if err != nil {
		return IdleResult{}, err
	}
	after, err := e.stats(ctx)
	if err != nil {
		return IdleResult{}, err
	}
	w1, err := processCPU(pid)
	if err != nil {
		return IdleResult{}, err
	}
	cmds, cpu, _, wall := before.delta(after)
	cmds -= 2 // the two INFO commandstats
	e.log.Info("idle pod's commands", "task_check_interval", iv, "top", topCalls(calls0, calls1, wall.Seconds(), "/s", 10))
	return IdleResult{
		TaskCheckInterval: iv,
		CmdsPerSec:        float64(cmds) / wall.Seconds(),
		RedisCPU:          cpu / wall.Seconds(),
		WorkerCPU:         (w1 - w0) / wall.Seconds(),
	}, nil
}
