//! `abcast bench --json`: the results as one JSON object, a field a line.

use std::fmt::Write as _;

use super::figures::Figures;
use super::group::{GroupOutcome, GroupSpec};

/// The headline latency figures of `f`, in µs.
fn lat_json(f: &Figures) -> String {
    let each: Vec<String> = f
        .latency
        .headline()
        .iter()
        .map(|(q, ns)| format!("\"{q}\": {}", json_num(Some(*ns as f64 / 1e3))))
        .collect();
    format!("{{{}}}", each.join(", "))
}

pub fn to_json(spec: &GroupSpec, a: &GroupOutcome, fa: &Figures, fb: Option<&Figures>) -> String {
    let n = |v: f64| json_num(Some(v));
    let members: Vec<String> = fa
        .members
        .iter()
        .map(|m| {
            format!(
                "{{\"id\": {}, \"msgs_per_sec\": {}, \"mb_per_sec\": {}, \"delivered\": {}, \
                 \"hash\": {}, \"latency_us\": {{\"p50\": {}, \"p99\": {}, \"max\": {}}}, \
                 \"failover_gap_ms\": {}, \"failover_pause_ms\": {}, \"longest_pause_ms\": {}, \
                 \"peak_rss_bytes\": {}}}",
                m.id,
                n(m.msgs_per_sec),
                n(m.mb_per_sec),
                m.delivered,
                json_str(&format!("{:016x}", m.hash)),
                n(m.latency.quantile(0.5) as f64 / 1e3),
                n(m.latency.quantile(0.99) as f64 / 1e3),
                n(m.latency.max() as f64 / 1e3),
                json_num(m.failover_gap_ns.map(|g| g as f64 / 1e6)),
                json_num(m.failover_pause_ns.map(|g| g as f64 / 1e6)),
                n(m.longest_pause_ns as f64 / 1e6),
                json_num(m.peak_rss.map(|r| r as f64)),
            )
        })
        .collect();
    let errors: Vec<String> = a
        .errors
        .iter()
        .chain(&a.check_failures)
        .map(|e| json_str(e))
        .collect();
    let fields = [
        ("nodes", spec.nodes.to_string()),
        ("size", spec.size.to_string()),
        ("buffering", json_str(spec.buffering.name())),
        ("senders", spec.senders.to_string()),
        ("duration_s", n(spec.duration.as_secs_f64())),
        ("warmup_s", n(spec.warmup.as_secs_f64())),
        ("rate_msgs_per_sec", json_num(spec.rate)),
        ("pace_us", spec.pace_us.to_string()),
        ("in_process", spec.in_process.to_string()),
        (
            "member_cpus",
            if spec.pin_cpus.is_some() {
                let each: Vec<String> = (1..=spec.nodes as u32)
                    .filter_map(|id| spec.member_cpu(id))
                    .map(|c| c.to_string())
                    .collect();
                format!("[{}]", each.join(", "))
            } else {
                "null".into()
            },
        ),
        ("throughput_msgs_per_sec", n(fa.min_msgs_per_sec)),
        ("throughput_mb_per_sec", n(fa.min_mb_per_sec)),
        ("latency_us", lat_json(fa)),
        ("latency_samples", fa.latency.count().to_string()),
        ("identical_order", fa.identical_order.to_string()),
        ("all_checks_passed", fa.all_checks_passed.to_string()),
        (
            "delivered_per_member",
            fa.members
                .first()
                .map_or("null".into(), |m| m.delivered.to_string()),
        ),
        (
            "baseline_msgs_per_sec",
            json_num(fb.map(|f| f.min_msgs_per_sec)),
        ),
        (
            "baseline_mb_per_sec",
            json_num(fb.map(|f| f.min_mb_per_sec)),
        ),
        ("baseline_latency_us", fb.map_or("null".into(), lat_json)),
        ("ratio_to_baseline", json_num(fb.map(|f| fa.ratio_to(f)))),
        (
            "failover_gap_ms",
            json_num(fa.failover_gap_ns.map(|g| g as f64 / 1e6)),
        ),
        (
            "failover_pause_ms",
            json_num(fa.failover_pause_ns.map(|g| g as f64 / 1e6)),
        ),
        ("longest_pause_ms", n(fa.longest_pause_ns as f64 / 1e6)),
        ("peak_rss_bytes", json_num(fa.peak_rss.map(|r| r as f64))),
        ("members", format!("[{}]", members.join(", "))),
        ("errors", format!("[{}]", errors.join(", "))),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("  {}: {v}", json_str(k)))
        .collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (finite) or `null`.
pub fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            if v == v.trunc() && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v:.3}")
            }
        }
        _ => "null".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_literals_are_escaped_and_numbers_kept_short() {
        assert_eq!(json_str("a\"b"), "\"a\\\"b\"");
        assert_eq!(json_str("\\\n\u{1}"), "\"\\\\\\n\\u0001\"");
        assert_eq!(json_num(Some(3.0)), "3");
        assert_eq!(json_num(Some(0.1234)), "0.123");
        assert_eq!(json_num(Some(f64::NAN)), "null");
        assert_eq!(json_num(None), "null");
    }
}
