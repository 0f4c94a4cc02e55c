//! `summary`: turns the JSON results of one run into a markdown table with pass/fail lines.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

fn load(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    serde_json::from_str(&text).ok()
}

fn f(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "n/a".to_string(),
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

const RSS_LIMIT_MIB: f64 = 150.0;
const P99_LIMIT_MS: f64 = 100.0;
const CPU_PER_STREAM_LIMIT: f64 = 1.0;

/// RSS is "flat" when the last point of the steady window is within max(8 MiB, 5 %) of its
/// first-quarter point (start-up allocations excluded).
fn rss_flat(rss: &Value) -> Option<(bool, f64)> {
    let q1 = rss["window_q1_mib"].as_f64()?;
    let end = rss["window_end_mib"].as_f64()?;
    let growth = end - q1;
    Some((growth <= (0.05 * q1).max(8.0), growth))
}

pub(crate) fn run(
    dir: &Path,
    streams: &[usize],
    command: &str,
    out: &Path,
) -> anyhow::Result<String> {
    let mut md = String::new();
    let mut verdicts: Vec<(bool, String)> = Vec::new();
    let _ = writeln!(md, "# ingest-server benchmark\n");
    let _ = writeln!(md, "Command: `{command}`\n");
    if let Ok(meta) = std::fs::read_to_string(dir.join("meta.txt")) {
        let _ = writeln!(md, "```\n{}\n```\n", meta.trim());
    }

    let base = load(dir, "fsync-baseline.json");
    if let Some(b) = &base {
        let _ = writeln!(
            md,
            "## Physical limit (same run): write + fdatasync + directory fsync per fragment\n"
        );
        let _ = writeln!(
            md,
            "| phase | fragments/s | MB/s | sync p50 ms | sync p99 | sync max | write+sync p99 |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        let m = &b["max"];
        let _ = writeln!(
            md,
            "| back-to-back ({} thread) | {} | {} | {} | {} | {} | {} |",
            b["threads"],
            f(&m["fragments_per_s"], 1),
            f(&m["MBps"], 1),
            f(&m["sync_latency_ms"]["p50"], 2),
            f(&m["sync_latency_ms"]["p99"], 2),
            f(&m["sync_latency_ms"]["max"], 2),
            f(&m["write_and_sync_latency_ms"]["p99"], 2)
        );
        if b["paced"].is_object() {
            let p = &b["paced"];
            let _ = writeln!(
                md,
                "| paced at {} MB/s (= {} streams) | {} | {} | {} | {} | {} | {} |",
                f(&b["paced_rate_MBps"], 1),
                match (
                    b["paced_rate_MBps"].as_f64(),
                    b["stream_bytes_per_sec"].as_f64()
                ) {
                    (Some(r), Some(s)) if s > 0.0 => format!("{:.0}", r * 1e6 / s),
                    _ => "n/a".into(),
                },
                f(&p["fragments_per_s"], 1),
                f(&p["MBps"], 1),
                f(&p["sync_latency_ms"]["p50"], 2),
                f(&p["sync_latency_ms"]["p99"], 2),
                f(&p["sync_latency_ms"]["max"], 2),
                f(&p["write_and_sync_latency_ms"]["p99"], 2)
            );
        }
        let _ = writeln!(
            md,
            "\nMean fragment {} bytes; the disk alone could hold about {} streams of this source by bytes/s ({} by fragments/s) with one writer.\n",
            b["mean_fragment_bytes"],
            f(&b["streams_capacity_by_bytes"], 0),
            f(&b["streams_capacity_by_fragments"], 0)
        );
    }

    let _ = writeln!(
        md,
        "## PutMedia fan-in (real-time replay, one TLS connection per stream)\n"
    );
    let disk_max = base.as_ref().and_then(|b| b["max"]["MBps"].as_f64());
    let paced_p99 = base
        .as_ref()
        .and_then(|b| b["paced"]["sync_latency_ms"]["p99"].as_f64());
    let mut t1 = String::new();
    let mut t2 = String::new();
    let _ = writeln!(
        t1,
        "| N | dur s | fragments sent | PERSISTED | ERROR acks | missing acks | failed streams | PERSISTED p50 / p90 / p99 / max ms | RECEIVED p99 ms | PERSISTED p99 / paced-fsync p99 |"
    );
    let _ = writeln!(t1, "|---|---|---|---|---|---|---|---|---|---|");
    let _ = writeln!(
        t2,
        "| N | acked MB/s (expected) | acked / disk max | server CPU % of one core | per stream | RSS start / max / end MiB | RSS growth in window MiB (slope MiB/min) | machine busy % of 2 cores (iowait) | loadgen CPU % of one core | other processes, cores |"
    );
    let _ = writeln!(t2, "|---|---|---|---|---|---|---|---|---|---|");
    let mut per_n_notes = String::new();
    for &n in streams {
        let Some(r) = load(dir, &format!("ingest-{n}.json")) else {
            let _ = writeln!(t1, "| {n} | (no result) |");
            verdicts.push((false, format!("N={n}: no result file (loadgen failed)")));
            continue;
        };
        let lat = &r["persisted_latency_ms"];
        let srv = &r["server"];
        let rss = &srv["rss"];
        let acked = r["acked_MBps"].as_f64();
        let flat = rss_flat(rss);
        let _ = writeln!(
            t1,
            "| {n} | {} | {} | {} | {} | {} | {} | {} / {} / {} / {} | {} | {} |",
            f(&r["duration_s"], 0),
            u(&r["fragments_sent"]),
            u(&r["fragments_persisted"]),
            u(&r["error_acks"]),
            u(&r["missing_persisted_acks"]),
            u(&r["stream_failures"]),
            f(&lat["p50"], 1),
            f(&lat["p90"], 1),
            f(&lat["p99"], 1),
            f(&lat["max"], 1),
            f(&r["received_latency_ms"]["p99"], 1),
            match (lat["p99"].as_f64(), paced_p99) {
                (Some(a), Some(d)) if d > 0.0 => format!("{:.1}x", a / d),
                _ => "n/a".into(),
            },
        );
        let _ = writeln!(
            t2,
            "| {n} | {} ({}) | {} | {} | {} | {} / {} / {} | {} ({}) | {} ({}) | {} | {} |",
            f(&r["acked_MBps"], 2),
            f(&r["expected_MBps"], 2),
            match (acked, disk_max) {
                (Some(a), Some(d)) if d > 0.0 => format!("{:.3}", a / d),
                _ => "n/a".into(),
            },
            f(&srv["cpu_pct_of_one_core"], 1),
            f(&srv["cpu_pct_of_one_core_per_stream"], 3),
            f(&rss["start_mib"], 1),
            f(&rss["max_mib"], 1),
            f(&rss["end_mib"], 1),
            flat.map_or("n/a".into(), |(_, g)| format!("{g:+.1}")),
            f(&rss["window_slope_mib_per_min"], 2),
            f(&r["machine"]["busy_pct_of_all_cores"], 0),
            f(&r["machine"]["iowait_pct_of_all_cores"], 0),
            f(&r["loadgen_cpu_pct_of_one_core"], 0),
            match (
                r["machine"]["busy_pct_of_all_cores"].as_f64(),
                r["machine"]["cores"].as_f64(),
                srv["cpu_pct_of_one_core"].as_f64(),
                r["loadgen_cpu_pct_of_one_core"].as_f64(),
            ) {
                (Some(b), Some(c), Some(s), Some(l)) => format!("{:.2}", (b * c - s - l) / 100.0),
                _ => "n/a".into(),
            },
        );
        let samples = r["error_samples"].as_array().cloned().unwrap_or_default();
        if !samples.is_empty() {
            let _ = writeln!(per_n_notes, "\nN={n} errors (first {}):\n", samples.len());
            for s in samples {
                let _ = writeln!(per_n_notes, "- `{}`", s.as_str().unwrap_or(""));
            }
        }
        if let Some(codes) = r["error_codes"].as_object().filter(|c| !c.is_empty()) {
            let _ = writeln!(
                per_n_notes,
                "\nN={n} ERROR acks by code: {}",
                serde_json::Value::Object(codes.clone())
            );
        }
        let held = u(&r["stream_failures"]) == 0
            && u(&r["error_acks"]) == 0
            && u(&r["missing_persisted_acks"]) == 0
            && u(&r["fragments_sent"]) > 0
            && u(&r["fragments_persisted"]) == u(&r["fragments_sent"]);
        verdicts.push((
            held,
            format!(
                "N={n}: all streams held ({} of {} fragments PERSISTED, {} ERROR acks, {} missing, {} failed streams)",
                u(&r["fragments_persisted"]), u(&r["fragments_sent"]), u(&r["error_acks"]),
                u(&r["missing_persisted_acks"]), u(&r["stream_failures"])
            ),
        ));
        if let Some(p99) = lat["p99"].as_f64() {
            verdicts.push((
                p99 < P99_LIMIT_MS,
                format!("N={n}: PERSISTED p99 {p99:.1} ms < {P99_LIMIT_MS} ms"),
            ));
        } else {
            verdicts.push((
                false,
                format!("N={n}: PERSISTED p99 unavailable (no PERSISTED acks)"),
            ));
        }
        if let Some(c) = srv["cpu_pct_of_one_core_per_stream"].as_f64() {
            verdicts.push((
                c < CPU_PER_STREAM_LIMIT,
                format!(
                    "N={n}: server CPU {c:.3} % of one core per stream < {CPU_PER_STREAM_LIMIT} %"
                ),
            ));
        }
        if let Some(m) = rss["max_mib"].as_f64() {
            verdicts.push((
                m < RSS_LIMIT_MIB,
                format!("N={n}: server RSS max {m:.1} MiB < {RSS_LIMIT_MIB} MiB"),
            ));
        }
        if let Some((ok, g)) = flat {
            verdicts.push((
                ok,
                format!(
                    "N={n}: server RSS flat over the steady window ({g:+.1} MiB from first quarter to end, of which anonymous {}; slope {} MiB/min)",
                    match (rss["anon_window_q1_mib"].as_f64(), rss["anon_window_end_mib"].as_f64()) {
                        (Some(a), Some(b)) if a > 0.0 => format!("{:+.1}", b - a),
                        _ => "n/a".into(),
                    },
                    f(&rss["window_slope_mib_per_min"], 2)
                ),
            ));
        }
    }
    let _ = writeln!(md, "{t1}\n{t2}{per_n_notes}");

    if let Some(g) = load(dir, "getmedia-fanout.json") {
        let _ = writeln!(md, "\n## GetMedia fan-out (EARLIEST, one stored stream)\n");
        let gm = &g["getmedia"];
        let cat = &g["cat"];
        let _ = writeln!(
            md,
            "| readers ok | bytes per reader | GetMedia total MB | GetMedia MB/s (to last byte) | all ended s | read files {}x in parallel MB/s | GetMedia / files ratio |",
            g["readers"]
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        let _ = writeln!(
            md,
            "| {} / {} | {} | {} | {} | {} | {} | {} |",
            g["readers_ok"],
            g["readers"],
            gm["per_reader_bytes_min"],
            f(&(gm["total_bytes"].as_f64().map(|b| b / 1e6).into()), 1),
            f(&gm["MBps_to_last_byte"], 1),
            f(&gm["all_ended_s"], 1),
            f(&cat["MBps"], 1),
            f(&g["ratio_getmedia_to_cat"], 3)
        );
        let _ = writeln!(
            md,
            "\nFragment files: {} files, {} bytes per pass.",
            cat["files"], cat["bytes_per_pass"]
        );
        let ok = u(&g["readers_ok"]) == u(&g["readers"]) && u(&gm["per_reader_bytes_min"]) > 0;
        verdicts.push((
            ok,
            format!(
                "GetMedia fan-out: {} of {} readers completed with data",
                g["readers_ok"], g["readers"]
            ),
        ));
        if let Some(errs) = g["reader_errors"].as_array().filter(|e| !e.is_empty()) {
            let _ = writeln!(
                md,
                "\nReader errors: {}",
                errs.iter()
                    .take(5)
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }

    let _ = writeln!(md, "\n## Targets\n");
    for (ok, line) in &verdicts {
        let _ = writeln!(md, "- {} {line}", if *ok { "PASS" } else { "FAIL" });
    }
    let _ = writeln!(
        md,
        "\nRSS \"flat\" = growth from the first quarter of the steady window to its end within max(8 MiB, 5 %). \
         CPU is utime+stime of the server from /proc over the steady window (after the stagger and two fragment periods), \
         as % of one core. Latency = last byte of the fragment written to the TLS socket -> PERSISTED ack read. \
         The load generator runs on the same 2 cores; its own CPU is shown."
    );
    std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
    Ok(md)
}
