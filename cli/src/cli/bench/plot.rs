//! `abcast bench --plot DIR`: SVG files drawn with `plotters`.
//!
//! - `latency-cdf.svg`: the latency from broadcast to delivery at every member, as a
//!   cumulative distribution on a log axis, abcast beside the raw-TCP baseline.
//! - `failover-timeline.svg`: deliveries per millisecond at each surviving member
//!   around the relayer's SIGKILL, the kill marked; without a kill, over the whole
//!   run (a throughput timeline).
//! - `throughput-vs-nodes.svg`, `throughput-vs-size.svg` (sweeps only): the slowest
//!   member's throughput of each run, abcast beside the raw-TCP limit.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

use super::figures::Figures;
use super::format::ms;
use super::group::GroupOutcome;
use super::histogram::Histogram;
use super::sweep::{SweepKind, SweepRun};

/// Width and height of every plot, pixels.
const SIZE: (u32, u32) = (960, 540);
/// The most points a timeline series has: bins are merged past it.
const TIMELINE_POINTS: u64 = 2_000;
/// Milliseconds shown before the kill on the fail-over timeline: enough to see the
/// pauses of normal running beside the fail-over's, few enough to tell each
/// millisecond apart.
const BEFORE_KILL_MS: f64 = 50.0;
/// Milliseconds shown after the kill, at least (more when the pause was longer).
const AFTER_KILL_MS: f64 = 150.0;

const ABCAST: RGBColor = RGBColor(31, 119, 180);
const RAW_TCP: RGBColor = RGBColor(255, 127, 14);
const KILL: RGBColor = RGBColor(214, 39, 40);
/// One colour per member on the timeline, in turn.
const MEMBERS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// One line of a plot.
struct Series {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
    /// Dashed (a marker) rather than solid.
    dashed: bool,
    /// A dot at every point.
    dots: bool,
}

impl Series {
    fn line(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            color,
            points,
            dashed: false,
            dots: false,
        }
    }
}

/// A plot's title, axes and where its legend goes.
struct Frame<'a> {
    caption: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    legend: SeriesLabelPosition,
    /// The x axis's labels.
    x_fmt: fn(&f64) -> String,
    /// How many x labels, at most.
    x_labels: usize,
}

/// A value as an axis label: `2.5M`, `300k`, `12`, `0.05`.
fn short(v: &f64) -> String {
    let a = v.abs();
    let s = if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    };
    match s.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => s.replace(".0M", "M"),
    }
}

/// A byte count as an axis label: `512`, `1 KiB`, `64 KiB`, `1 MiB`.
fn bytes(v: &f64) -> String {
    let v = v.round();
    if v >= 1_048_576.0 && v % 1_048_576.0 == 0.0 {
        format!("{} MiB", v / 1_048_576.0)
    } else if v >= 1024.0 && v % 1024.0 == 0.0 {
        format!("{} KiB", v / 1024.0)
    } else {
        format!("{v}")
    }
}

/// A whole number as an axis label; nothing between whole numbers.
fn whole(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// From the power of `base` at or below `lo` to the one at or above `hi` (values
/// above zero): a log axis whose labels start at its bottom.
fn powers(lo: f64, hi: f64, base: f64) -> std::ops::Range<f64> {
    let down = base.powf((lo.ln() / base.ln()).floor());
    let up = base.powf((hi.ln() / base.ln()).ceil());
    down..up.max(down * base)
}

/// Draws `series` on axes `x` and `y` into an SVG document.
fn draw<X, Y>(frame: &Frame, x: X, y: Y, series: &[Series]) -> Result<String, String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<_>| format!("drawing {:?}: {e}", frame.caption);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(frame.caption, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(frame.x_desc)
            .y_desc(frame.y_desc)
            .x_label_formatter(&frame.x_fmt)
            .y_label_formatter(&short)
            .x_labels(frame.x_labels)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        for s in series {
            let style = s.color.stroke_width(2);
            let color = s.color;
            let drawn = if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(s.points.clone(), 8, 5, style))
                    .map_err(err)?
            } else {
                chart
                    .draw_series(LineSeries::new(s.points.clone(), style))
                    .map_err(err)?
            };
            drawn
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color));
            if s.dots {
                chart
                    .draw_series(s.points.iter().map(|p| Circle::new(*p, 4, color.filled())))
                    .map_err(err)?;
            }
        }
        chart
            .configure_series_labels()
            .position(frame.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Writes `svg` to `dir/name`; returns the path.
fn write(dir: &Path, name: &str, svg: String) -> Result<PathBuf, String> {
    let path = dir.join(name);
    std::fs::write(&path, svg).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(path)
}

/// The smallest and largest of `v` (`None` if empty).
fn bounds(v: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    v.fold(None, |b, x| match b {
        None => Some((x, x)),
        Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
    })
}

/// A histogram's distribution in milliseconds, labelled with its p50 and p99.
fn cdf_series(name: &str, color: RGBColor, h: &Histogram) -> Series {
    let points = h
        .cdf()
        .into_iter()
        .map(|(ns, q)| ((ns.max(1) as f64) / 1e6, q))
        .collect();
    Series::line(
        format!(
            "{name} (p50 {}, p99 {}, max {})",
            ms(h.quantile(0.5)),
            ms(h.quantile(0.99)),
            ms(h.max())
        ),
        color,
        points,
    )
}

/// `latency-cdf.svg` of abcast's run (figures `fa`), beside the baseline's `fb`.
fn latency_cdf(
    dir: &Path,
    title: &str,
    fa: &Figures,
    fb: Option<&Figures>,
) -> Result<PathBuf, String> {
    let mut series = vec![cdf_series("abcast", ABCAST, &fa.latency)];
    if let Some(fb) = fb {
        series.push(cdf_series("raw TCP", RAW_TCP, &fb.latency));
    }
    let (lo, hi) = bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)))
        .ok_or("no latency was measured: nothing to plot")?;
    let caption = format!("Latency, broadcast to delivery, all members: {title}");
    let frame = Frame {
        caption: &caption,
        x_desc: "latency, ms (log scale)",
        y_desc: "fraction of deliveries at or below",
        legend: SeriesLabelPosition::LowerRight,
        x_fmt: short,
        x_labels: 10,
    };
    let x = (lo / 1.25..hi * 1.25).log_scale();
    write(dir, "latency-cdf.svg", draw(&frame, x, 0.0..1.0, &series)?)
}

/// `failover-timeline.svg`: deliveries per ms at each survivor around the kill, or
/// over the whole run without one.
fn timeline(dir: &Path, title: &str, o: &GroupOutcome, f: &Figures) -> Result<PathBuf, String> {
    let load_ms = o.t_end.saturating_sub(o.t_go) as f64 / 1e6;
    let kill_ms = o.t_kill.map(|k| k.saturating_sub(o.t_go) as f64 / 1e6);
    let (from, to, shift, scale) = match kill_ms {
        Some(k) => {
            let pause = f.failover_pause_ns.unwrap_or(0) as f64 / 1e6;
            let after = AFTER_KILL_MS.max(3.0 * pause + 50.0);
            // x: ms from the kill, up to the end of the load.
            (
                (k - BEFORE_KILL_MS).max(0.0),
                (k + after).min(load_ms),
                k,
                1.0,
            )
        }
        // x: seconds from the start of the load.
        None => (0.0, load_ms, 0.0, 1e-3),
    };
    let mut series = Vec::new();
    let mut bin = 1;
    for (i, m) in o.members.iter().filter(|m| !m.killed).enumerate() {
        let Some(t) = m.summary.as_ref().and_then(|s| s.timeline.as_ref()) else {
            continue;
        };
        let span = (to - from).max(1.0) as u64;
        let own = t.bin_ms();
        bin = span.div_ceil(TIMELINE_POINTS).max(own).div_ceil(own) * own;
        let points = t
            .per_ms(bin, from, to)
            .into_iter()
            .map(|(x, y)| ((x - shift) * scale, y))
            .collect();
        series.push(Series::line(
            format!("member {}", m.id),
            MEMBERS[i % MEMBERS.len()],
            points,
        ));
    }
    let (_, top) = bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)))
        .ok_or("no member reported its deliveries over time: nothing to plot")?;
    // Room above the lines for the legend.
    let top = (top * 1.35).max(1.0);
    let (x0, x1) = ((from - shift) * scale, (to - shift) * scale);
    let per = if bin > 1 {
        format!("deliveries per ms (mean over {bin} ms)")
    } else {
        "deliveries per ms".to_string()
    };
    let (caption, x_desc) = match kill_ms {
        Some(_) => {
            series.push(Series {
                label: format!(
                    "relayer SIGKILLed (deliveries paused at most {})",
                    f.failover_pause_ns.map_or("-".into(), ms)
                ),
                color: KILL,
                points: vec![(0.0, 0.0), (0.0, top)],
                dashed: true,
                dots: false,
            });
            (
                format!("Fail-over: deliveries at each survivor around the kill; {title}"),
                "ms from the relayer's SIGKILL",
            )
        }
        None => (
            format!("Throughput timeline (no kill): deliveries at each member; {title}"),
            "seconds from the start of the load",
        ),
    };
    let frame = Frame {
        caption: &caption,
        x_desc,
        y_desc: &per,
        legend: SeriesLabelPosition::UpperRight,
        x_fmt: short,
        x_labels: 10,
    };
    write(
        dir,
        "failover-timeline.svg",
        draw(&frame, x0..x1, 0.0..top, &series)?,
    )
}

/// `name members, size B`: what a plot's run was.
fn run_title(o: &GroupOutcome, size: usize) -> String {
    format!("{} members, {size}-byte payloads", o.members.len())
}

/// The plots of one run (no sweep): the latency CDF and the timeline. Returns the
/// files written.
/// Prints where each plot of `written` went, or why none did: whether they were
/// written.
pub fn announce(written: Result<Vec<PathBuf>, String>) -> bool {
    match written {
        Ok(files) => {
            for f in files {
                println!("plot written to {}", f.display());
            }
            true
        }
        Err(e) => {
            eprintln!("abcast bench: --plot: {e}");
            false
        }
    }
}

pub fn write_run(
    dir: &Path,
    size: usize,
    a: &GroupOutcome,
    fa: &Figures,
    fb: Option<&Figures>,
) -> Result<Vec<PathBuf>, String> {
    let title = run_title(a, size);
    Ok(vec![
        latency_cdf(dir, &title, fa, fb)?,
        timeline(dir, &title, a, fa)?,
    ])
}

/// Whether values from `lo` to `hi` call for a log axis.
fn wide(lo: f64, hi: f64) -> bool {
    lo > 0.0 && hi / lo >= 20.0
}

/// One sweep's plot: the slowest member's throughput of each run, abcast beside
/// raw TCP.
fn throughput(dir: &Path, kind: SweepKind, runs: &[&SweepRun]) -> Result<PathBuf, String> {
    let value = |f: &Figures| match kind {
        SweepKind::Nodes => f.min_msgs_per_sec,
        SweepKind::Size => f.min_mb_per_sec,
    };
    let x_of = |r: &SweepRun| match kind {
        SweepKind::Nodes => r.spec.nodes as f64,
        SweepKind::Size => r.spec.size as f64,
    };
    let mut sorted: Vec<&SweepRun> = runs.to_vec();
    sorted.sort_by(|a, b| x_of(a).total_cmp(&x_of(b)));
    let mut series = vec![Series {
        dots: true,
        ..Series::line(
            "abcast",
            ABCAST,
            sorted.iter().map(|r| (x_of(r), value(&r.fa))).collect(),
        )
    }];
    let raw: Vec<(f64, f64)> = sorted
        .iter()
        .filter_map(|r| Some((x_of(r), value(r.fb.as_ref()?))))
        .collect();
    if !raw.is_empty() {
        series.push(Series {
            dots: true,
            ..Series::line("raw TCP, same traffic (the limit)", RAW_TCP, raw)
        });
    }
    let (xlo, xhi) = bounds(sorted.iter().map(|r| x_of(r))).ok_or("no run to plot")?;
    let (ylo, yhi) = bounds(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| *v > 0.0),
    )
    .unwrap_or((1.0, 1.0));
    let first = &sorted[0].spec;
    let (name, caption, x_desc, y_desc) = match kind {
        SweepKind::Nodes => (
            "throughput-vs-nodes.svg",
            format!(
                "Throughput against group size ({}-byte payloads, slowest member)",
                first.size
            ),
            "members",
            "msgs/s delivered",
        ),
        SweepKind::Size => (
            "throughput-vs-size.svg",
            format!(
                "Throughput against message size ({} members, slowest member)",
                first.nodes
            ),
            "payload bytes (log scale)",
            "MB/s delivered",
        ),
    };
    let y_desc = if wide(ylo, yhi) {
        format!("{y_desc} (log scale)")
    } else {
        y_desc.to_string()
    };
    let (x_fmt, x_labels): (fn(&f64) -> String, usize) = match kind {
        SweepKind::Nodes => (whole, (xhi - xlo) as usize + 3),
        SweepKind::Size => (bytes, 12),
    };
    let frame = Frame {
        caption: &caption,
        x_desc,
        y_desc: &y_desc,
        legend: SeriesLabelPosition::LowerRight,
        x_fmt,
        x_labels,
    };
    let nodes = xlo - 0.5..xhi + 0.5;
    // Payload sizes on powers of two; a size sweep of one value still gets a range.
    let sizes = powers(xlo / 1.2, xhi * 1.2, 2.0);
    let linear_y = 0.0..yhi * 1.15;
    let log_y = powers(ylo, yhi, 10.0);
    let svg = match (kind, wide(ylo, yhi)) {
        (SweepKind::Nodes, false) => draw(&frame, nodes, linear_y, &series),
        (SweepKind::Nodes, true) => draw(&frame, nodes, log_y.log_scale(), &series),
        (SweepKind::Size, false) => draw(&frame, sizes.log_scale().base(2.0), linear_y, &series),
        (SweepKind::Size, true) => draw(
            &frame,
            sizes.log_scale().base(2.0),
            log_y.log_scale(),
            &series,
        ),
    }?;
    write(dir, name, svg)
}

/// The plots of a sweep: one throughput plot per swept option. Returns the files
/// written.
pub fn write_sweeps(dir: &Path, runs: &[SweepRun]) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for kind in [SweepKind::Nodes, SweepKind::Size] {
        let of_kind: Vec<&SweepRun> = runs.iter().filter(|r| r.kind == kind).collect();
        if !of_kind.is_empty() {
            written.push(throughput(dir, kind, &of_kind)?);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_are_short() {
        let cases = [
            (2_500_000.0, "2.5M"),
            (1.0, "1"),
            (3_000_000.0, "3M"),
            (300_000.0, "300k"),
            (12.0, "12"),
            (0.0, "0"),
            (0.5, "0.5"),
            (0.05, "0.050"),
        ];
        for (v, s) in cases {
            assert_eq!(short(&v), s, "{v}");
        }
    }

    #[test]
    fn byte_and_whole_labels() {
        assert_eq!(bytes(&64.0), "64");
        assert_eq!(bytes(&1024.0), "1 KiB");
        assert_eq!(bytes(&65536.0), "64 KiB");
        assert_eq!(bytes(&1_048_576.0), "1 MiB");
        assert_eq!(bytes(&1000.0), "1000");
        assert_eq!(whole(&3.0), "3");
        assert_eq!(whole(&3.5), "");
        assert_eq!(powers(17.0, 471.0, 10.0), 10.0..1000.0);
        assert_eq!(powers(64.0, 64.0, 2.0), 64.0..128.0);
    }

    #[test]
    fn a_plot_is_an_svg_document_with_its_series() {
        let frame = Frame {
            caption: "test",
            x_desc: "x",
            y_desc: "y",
            legend: SeriesLabelPosition::UpperLeft,
            x_fmt: short,
            x_labels: 10,
        };
        let series = [Series::line(
            "the series",
            ABCAST,
            vec![(1.0, 1.0), (10.0, 5.0)],
        )];
        let svg = draw(&frame, (0.5..20.0).log_scale(), 0.0..6.0, &series).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("the series") && svg.contains("<polyline"));
    }
}
