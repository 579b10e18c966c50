package main

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writePlots draws the page's SVG plots into dir: those d has figures
// for. It returns the files written by plot name (latency, concurrency,
// cost, replicas).
func writePlots(d *Data, dir string) (map[string]string, error) {
	out := map[string]string{}
	for _, pl := range []struct {
		name string
		make func(*Data) (*plot.Plot, error)
	}{
		{"latency", latencyPlot},
		{"concurrency", concurrencyPlot},
		{"cost", costPlot},
		{"replicas", replicasPlot},
	} {
		p, err := pl.make(d)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", pl.name, err)
		}
		file := pl.name + ".svg"
		path := filepath.Join(dir, file)
		if p == nil {
			// No figures for it: no stale plot from an earlier run either.
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				return nil, err
			}
			continue
		}
		b, err := svgBytes(p)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", pl.name, err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return nil, err
		}
		out[pl.name] = file
	}
	return out, nil
}

// svgBytes renders p as a 6×4 inch SVG.
func svgBytes(p *plot.Plot) ([]byte, error) {
	wt, err := p.WriterTo(6*vg.Inch, 4*vg.Inch, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// latencyPlot: p50, p95 and p99 against the offered approvals per second
// (open loop, fresh), with the after-history points when there are some.
func latencyPlot(d *Data) (*plot.Plot, error) {
	shares := offeredShares(d, "fresh")
	if len(shares) == 0 {
		return nil, nil
	}
	var p50, p95, p99 plotter.XYs
	for _, s := range shares {
		st := aggregate(selectLoad(d, "fresh", "open", 0, s))
		p50 = append(p50, plotter.XY{X: st.OfferedPerS, Y: st.P50})
		p95 = append(p95, plotter.XY{X: st.OfferedPerS, Y: st.P95})
		p99 = append(p99, plotter.XY{X: st.OfferedPerS, Y: st.P99})
	}
	p := plot.New()
	p.Title.Text = "Approval latency against offered load (fresh demo)"
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = "offered approvals/s"
	p.Y.Label.Text = "latency (ms)"
	p.X.Min, p.Y.Min = 0, 0
	if err := plotutil.AddLinePoints(p, "p50", p50, "p95", p95, "p99", p99); err != nil {
		return nil, err
	}
	var hist plotter.XYs
	for _, s := range offeredShares(d, "history") {
		st := aggregate(selectLoad(d, "history", "open", 0, s))
		hist = append(hist, plotter.XY{X: st.OfferedPerS, Y: st.P99})
	}
	if len(hist) > 0 {
		sc, err := plotter.NewScatter(hist)
		if err != nil {
			return nil, err
		}
		sc.Color = color.Black
		sc.Shape = plotutil.Shape(3)
		sc.Radius = vg.Points(4)
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("p99 after %s approvals", thousands(d.History)), sc)
	}
	p.Legend.Top, p.Legend.Left = true, true
	headroom(p, p50, p95, p99, hist)
	p.Add(plotter.NewGrid())
	return p, nil
}

// concurrencyPlot: throughput against clients (closed loop), at the start
// and after history, with ECDSA signing keys and with RSA ones.
func concurrencyPlot(d *Data) (*plot.Plot, error) {
	cs := concurrencies(d, "fresh")
	if len(cs) == 0 {
		return nil, nil
	}
	series := func(phase string) plotter.XYs {
		var xy plotter.XYs
		for _, c := range concurrencies(d, phase) {
			xy = append(xy, plotter.XY{X: float64(c), Y: aggregate(selectLoad(d, phase, "closed", c, 0)).ApprovalsPerS})
		}
		return xy
	}
	p := plot.New()
	p.Title.Text = "Throughput against clients (as fast as they go)"
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = "concurrent clients"
	p.Y.Label.Text = "approvals/s"
	p.X.Min, p.Y.Min = 0, 0
	args := []any{"ECDSA, fresh", series("fresh")}
	if h := series("history"); len(h) > 0 {
		args = append(args, fmt.Sprintf("ECDSA, after %s", thousands(d.History)), h)
	}
	if r := series("rsa"); len(r) > 0 {
		args = append(args, "RSA keys, fresh", r)
	}
	if h := series("rsa-history"); len(h) > 0 {
		args = append(args, fmt.Sprintf("RSA keys, after %s", thousands(d.RSAHistory)), h)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, err
	}
	p.Legend.Top = true
	headroom(p, series("fresh"), series("history"), series("rsa"), series("rsa-history"))
	p.X.Max = float64(cs[len(cs)-1]) + 1
	p.Add(plotter.NewGrid())
	return p, nil
}

// headroom raises the Y axis above the highest point so that the legend
// in the top corner covers no line.
func headroom(p *plot.Plot, series ...plotter.XYs) {
	top := 0.0
	for _, xy := range series {
		for _, pt := range xy {
			top = max(top, pt.Y)
		}
	}
	if top > 0 {
		p.Y.Max = top * 1.35
	}
	p.Y.Tick.Marker = plainTicks{}
}

// plainTicks are gonum's default ticks labelled without trailing zeros.
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// costPlot: the split of one approval's latency, stacked per deployment.
func costPlot(d *Data) (*plot.Plot, error) {
	bs, err := bounds(medianOps(d.Envelope), d.Host.Cores)
	if err != nil {
		return nil, nil
	}
	sp, ok := costSplits(d, bs)
	if !ok {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Cost of one approval at one client"
	p.Title.Padding = vg.Points(8)
	p.Y.Label.Text = "ms of latency"
	p.Y.Min = 0
	parts := []struct {
		name string
		v    func(split) float64
	}{
		{"crypto", func(s split) float64 { return s.Crypto }},
		{"XML", func(s split) float64 { return s.XML }},
		{"database", func(s split) float64 { return s.Database }},
		{"network, rest", func(s split) float64 { return s.Rest }},
	}
	var names []string
	top := 0.0
	for _, s := range sp {
		n := s.Name + " (measured)"
		if !s.Measured {
			n = s.Name + " (modelled)"
		}
		names = append(names, n)
		top = max(top, s.Total)
	}
	var below *plotter.BarChart
	for i, part := range parts {
		vals := make(plotter.Values, len(sp))
		for j, s := range sp {
			vals[j] = part.v(s)
		}
		bc, err := plotter.NewBarChart(vals, vg.Points(60))
		if err != nil {
			return nil, err
		}
		bc.Color = plotutil.Color(i)
		bc.LineStyle.Width = 0
		if below != nil {
			bc.StackOn(below)
		}
		below = bc
		p.Add(bc)
		p.Legend.Add(part.name, bc)
	}
	p.NominalX(names...)
	// Room on the right for the legend.
	p.X.Min, p.X.Max = -0.5, float64(len(sp))+0.8
	p.Y.Max = top * 1.1
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p, nil
}

// replicasPlot: throughput against hub replicas, when measured: the
// median over rounds at each number of replicas.
func replicasPlot(d *Data) (*plot.Plot, error) {
	ns := replicaCounts(d)
	if len(ns) == 0 {
		return nil, nil
	}
	var xy plotter.XYs
	for _, n := range ns {
		xy = append(xy, plotter.XY{X: float64(n), Y: aggregate(selectReplicas(d, n)).ApprovalsPerS})
	}
	p := plot.New()
	p.Title.Text = "Throughput against hub replicas on one PostgreSQL"
	p.X.Label.Text = "replicas"
	p.Y.Label.Text = "approvals/s"
	p.X.Min, p.X.Max, p.Y.Min = 0, float64(ns[len(ns)-1])+0.5, 0
	if err := plotutil.AddLinePoints(p, fmt.Sprintf("approvals/s, %d clients", replicaConc(d)), xy); err != nil {
		return nil, err
	}
	headroom(p, xy)
	p.X.Tick.Marker = plot.ConstantTicks(replicaTicks(ns))
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p, nil
}

// replicaTicks label the X axis at each number of replicas measured.
func replicaTicks(ns []int) []plot.Tick {
	ts := []plot.Tick{{Value: 0, Label: "0"}}
	for _, n := range ns {
		ts = append(ts, plot.Tick{Value: float64(n), Label: strconv.Itoa(n)})
	}
	return ts
}
