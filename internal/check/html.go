package check

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"time"
)

// The HTML report: the verdicts and a timeline of the run as one
// self-contained page (inline SVG, no scripts, nothing fetched), to open
// in a browser. The timeline has one row per bucket of time: faults as
// shaded bands with the node they hit, acknowledged writes per second
// coloured by the epoch that acknowledged them (a failover changes the
// colour), failed and unknown-outcome operations, the p99 latency of
// acknowledged writes, and lost writes as red marks where they were
// acknowledged.

// timelineBucket is one slice of the run.
type timelineBucket struct {
	Acked, Failed, Unknown, Lost int
	Epoch                        uint64 // of the last acknowledged write in it
	P99                          time.Duration
}

// buckets cuts h into n equal slices.
func buckets(h *History, rep Report, n int) ([]timelineBucket, time.Duration) {
	var end time.Duration
	for _, op := range h.Ops {
		end = max(end, op.End)
	}
	if end <= 0 {
		end = time.Second
	}
	width := end/time.Duration(n) + 1
	out := make([]timelineBucket, n)
	lat := make([][]time.Duration, n)
	at := func(d time.Duration) int { return min(int(d/width), n-1) }
	for _, op := range h.Ops {
		if op.Kind == Read {
			continue
		}
		b := &out[at(op.End)]
		switch op.Outcome {
		case Ok:
			b.Acked++
			b.Epoch = max(b.Epoch, op.Epoch)
			lat[at(op.End)] = append(lat[at(op.End)], op.End-op.Start)
		case Fail:
			b.Failed++
		case Unknown:
			b.Unknown++
		}
	}
	for _, op := range rep.Lost.Lost {
		out[at(op.End)].Lost++
	}
	for i, l := range lat {
		if len(l) > 0 {
			sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
			out[i].P99 = l[len(l)*99/100]
		}
	}
	return out, width
}

// epochColours tell epochs apart on the timeline.
var epochColours = []string{"#4878d0", "#ee854a", "#6acc64", "#956cb4", "#8c613c", "#dc7ec0", "#797979", "#d5bb67"}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>replicant check: {{.Setup.sync}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}
.broken{color:#b00;font-weight:bold}.held{color:#070}.np{color:#777}
svg text{font:11px system-ui,sans-serif}
</style></head><body>
<h1>replicant check</h1>
<p>mode {{.Setup.mode}}, sync <b>{{.Setup.sync}}</b>, {{.Setup.nodes}} nodes, faults {{.Setup.nemesis}}, {{.Setup.duration}}, seed {{.Setup.seed}}.
{{.Report.Operations}} operations, {{.Report.Acknowledged}} acknowledged writes.</p>
<h2>Verdicts</h2>
<table><tr><th>promise</th><th>promised</th><th>outcome</th><th>detail</th></tr>
{{range .Report.Verdicts}}<tr><td>{{.Promise}}</td><td>{{if .Promised}}yes{{else}}no{{end}}</td>
<td class="{{if .Held}}held{{else if .Promised}}broken{{else}}np{{end}}">{{if .Held}}held{{else if .Promised}}BROKEN{{else}}did not hold (not promised){{end}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
<h2>Timeline</h2>
<p>Bars: writes acknowledged per {{ms .Width}}, coloured by the epoch that acknowledged them. Shaded: faults. Grey ticks: writes that failed; orange: outcome unknown; red: acknowledged writes that were lost. Line: p99 latency of acknowledged writes (scale right, max {{ms .MaxP99}}).</p>
<svg width="{{.W}}" height="{{.H}}" xmlns="http://www.w3.org/2000/svg">
{{range .Faults}}<rect x="{{.X}}" y="0" width="{{.Wd}}" height="{{$.PlotH}}" fill="#f3d6d6"/><text x="{{.X}}" y="12">{{.Label}}</text>
{{end}}{{range .Bars}}<rect x="{{.X}}" y="{{.Y}}" width="{{.Wd}}" height="{{.Ht}}" fill="{{.Colour}}"/>{{if .Failed}}<rect x="{{.X}}" y="{{$.PlotH}}" width="{{.Wd}}" height="4" fill="#999"/>{{end}}{{if .Unknown}}<rect x="{{.X}}" y="{{$.UnkY}}" width="{{.Wd}}" height="4" fill="#f90"/>{{end}}{{if .Lost}}<rect x="{{.X}}" y="{{$.LostY}}" width="{{.Wd}}" height="6" fill="#d00"/>{{end}}
{{end}}<polyline fill="none" stroke="#222" stroke-width="1" points="{{.Latency}}"/>
{{range .Ticks}}<text x="{{.X}}" y="{{$.AxisY}}">{{.Label}}</text>
{{end}}</svg>
<h2>Faults</h2>
<table><tr><th>fault</th><th>node</th><th>at</th><th>healed</th><th>first acknowledged write after</th><th>longest gap</th></tr>
{{range .Report.Availability}}<tr><td>{{.Fault.Kind}}</td><td>{{.Fault.Node}}</td><td>{{ms .Fault.Start}}</td><td>{{ms .Fault.Healed}}</td><td>{{if ge .FirstAck 0}}{{ms .FirstAck}}{{else}}none{{end}}</td><td>{{ms .LongestGap}}</td></tr>
{{end}}</table>
<h2>Reads</h2>
<p>Leader reads: {{.Report.Linear.Verdict}} ({{.Report.Linear.Ops}} operations, {{.Report.Linear.Pending}} writes of unknown outcome).
Session reads: {{.Report.Sessions.Reads}}, {{len .Report.Sessions.Violations}} violations.
Eventual reads: {{.Report.Stale.Reads}}, {{.Report.Stale.Stale}} stale (at most {{.Report.Stale.MaxBehind}} writes behind, oldest {{ms .Report.Stale.MaxAge}}, p99 {{ms .Report.Stale.P99Age}}).</p>
{{if .Report.Lost.Lost}}<h2>Lost writes</h2><table><tr><th>key</th><th>value</th><th>acknowledged by</th><th>at</th><th>epoch:LSN</th></tr>
{{range .Report.Lost.Lost}}<tr><td>{{.Key}}</td><td>{{.Value}}</td><td>{{.Node}}</td><td>{{ms .End}}</td><td>{{.Epoch}}:{{.LSN}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

// WriteHTML writes the report with h's timeline as a self-contained HTML
// page.
func (r Report) WriteHTML(w io.Writer, h *History) error {
	const n, W, plotH = 200, 1000, 220
	bs, width := buckets(h, r, n)
	bw := float64(W) / n
	type bar struct {
		X, Y, Wd, Ht          float64
		Colour                string
		Failed, Unknown, Lost int
	}
	type band struct {
		X, Wd float64
		Label string
	}
	type tick struct {
		X     float64
		Label string
	}
	maxAck, maxP99 := 1, time.Millisecond
	for _, b := range bs {
		maxAck = max(maxAck, b.Acked)
		maxP99 = max(maxP99, b.P99)
	}
	var bars []bar
	lat := ""
	for i, b := range bs {
		ht := float64(b.Acked) / float64(maxAck) * (plotH - 20)
		bars = append(bars, bar{X: float64(i) * bw, Y: plotH - ht, Wd: bw, Ht: ht,
			Colour: epochColours[int(b.Epoch)%len(epochColours)], Failed: b.Failed, Unknown: b.Unknown, Lost: b.Lost})
		if b.P99 > 0 {
			lat += fmt.Sprintf("%.1f,%.1f ", float64(i)*bw+bw/2, plotH-float64(b.P99)/float64(maxP99)*(plotH-20))
		}
	}
	scale := func(d time.Duration) float64 { return float64(d) / float64(width) * bw }
	var faults []band
	for _, f := range h.Faults {
		end := f.Healed
		if end <= f.Start {
			end = width * n
		}
		faults = append(faults, band{X: scale(f.Start), Wd: max(scale(end-f.Start), 1), Label: f.Kind + " " + f.Node})
	}
	var ticks []tick
	for i := 0; i <= 10; i++ {
		d := width * n * time.Duration(i) / 10
		ticks = append(ticks, tick{X: min(scale(d), W-40), Label: d.Round(time.Second).String()})
	}
	setup := r.Setup
	if setup == nil {
		setup = map[string]string{}
	}
	return htmlTmpl.Execute(w, map[string]any{
		"Report": r, "Setup": setup, "Width": width, "MaxP99": maxP99,
		"W": W, "H": plotH + 40, "PlotH": plotH, "UnkY": plotH + 5, "LostY": plotH + 10, "AxisY": plotH + 32,
		"Bars": bars, "Faults": faults, "Ticks": ticks, "Latency": lat,
	})
}
