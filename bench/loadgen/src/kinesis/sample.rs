//! Server CPU (utime+stime) and RSS of the server processes over a measurement window, with
//! this process's CPU and the machine's.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::procstat;

pub(crate) struct Sampler {
    pids: Vec<String>,
    t0: Instant,
    cpu0: f64,
    self0: f64,
    machine0: procstat::MachineCpu,
    stop: watch::Sender<bool>,
    rss: JoinHandle<Vec<u64>>,
}

fn cpu_of(pids: &[String]) -> f64 {
    pids.iter().filter_map(|p| procstat::proc_cpu_secs(p)).sum()
}

fn rss_of(pids: &[String]) -> u64 {
    pids.iter().filter_map(|p| procstat::rss_kib(p)).sum()
}

impl Sampler {
    pub(crate) fn start(pids: &[u32]) -> Self {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let (stop, mut stopped) = watch::channel(false);
        let rss = {
            let pids = pids.clone();
            tokio::spawn(async move {
                let mut series = Vec::new();
                if pids.is_empty() {
                    return series;
                }
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = tick.tick() => series.push(rss_of(&pids)),
                        _ = stopped.changed() => break,
                    }
                }
                series.push(rss_of(&pids));
                series
            })
        };
        Self {
            cpu0: cpu_of(&pids),
            self0: procstat::proc_cpu_secs("self").unwrap_or(0.0),
            machine0: procstat::machine_cpu(),
            t0: Instant::now(),
            pids,
            stop,
            rss,
        }
    }

    /// Ends the window; the JSON has the window, server CPU (% of one core), RSS (KiB),
    /// loadgen CPU and machine busy (% of one core).
    pub(crate) async fn finish(self) -> Value {
        let window = self.t0.elapsed().as_secs_f64();
        let cpu = cpu_of(&self.pids) - self.cpu0;
        let own = procstat::proc_cpu_secs("self").unwrap_or(0.0) - self.self0;
        let m1 = procstat::machine_cpu();
        let _ = self.stop.send(true);
        let series = self.rss.await.unwrap_or_default();
        let machine_busy = if m1.total > self.machine0.total {
            (m1.busy - self.machine0.busy) as f64 / (m1.total - self.machine0.total) as f64
                * procstat::ncpu() as f64
                * 100.0
        } else {
            0.0
        };
        json!({
            "window_s": window,
            "server": {
                "pids": self.pids,
                "cpu_s": cpu,
                "cpu_pct_of_one_core": if self.pids.is_empty() { Value::Null } else { json!(cpu / window * 100.0) },
                "rss_kib_start": series.first(),
                "rss_kib_max": series.iter().max(),
                "rss_kib_end": series.last(),
            },
            "loadgen_cpu_pct_of_one_core": own / window * 100.0,
            "machine_busy_pct_of_one_core": machine_busy,
            "ncpu": procstat::ncpu(),
            "rss_series_kib": series,
        })
    }
}

/// Merges the sampler's fields into a result object.
pub(crate) fn merge(into: &mut Value, sample: Value) {
    if let (Some(o), Value::Object(s)) = (into.as_object_mut(), sample) {
        for (k, v) in s {
            o.insert(k, v);
        }
    }
}
