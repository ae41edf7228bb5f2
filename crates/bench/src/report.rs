//! The report: one Markdown table of every scenario, with its throughput
//! as a share of both baselines (h2load's rows of h2load's baselines, each
//! row of the baselines measured last before it), and the peak memory of
//! each process.

use std::{fmt::Write, time::Duration};

use crate::scenarios::Row;

/// Rows as they are measured, and the memory of each layout.
pub struct Report {
    machine: String,
    /// The baselines measured last.
    latest: Baselines,
    /// Each row with the baselines it is compared with.
    rows: Vec<(Row, Baselines)>,
    memory: Vec<(String, Vec<(String, f64)>)>,
}

/// The baselines' rates, from this harness and from h2load.
#[derive(Debug, Clone, Copy, Default)]
struct Baselines {
    /// The bare echo's.
    direct: [Option<f64>; 2],
    /// The proxied echo's.
    proxied: [Option<f64>; 2],
}

impl Report {
    /// An empty report for `machine`.
    pub fn new(machine: String) -> Self {
        Self {
            machine,
            latest: Baselines::default(),
            rows: Vec::new(),
            memory: Vec::new(),
        }
    }

    /// The baselines are measured again: rows from now on are compared
    /// with the new ones only.
    pub fn new_baselines(&mut self) {
        self.latest = Baselines::default();
    }

    /// The bare echo: the transport's limit.
    pub fn baseline_direct(&mut self, row: Row) {
        self.latest.direct[usize::from(row.by_h2load)] = Some(row.outcome.rate());
        self.add(row);
    }

    /// The proxied echo: the floor of any gateway hop.
    pub fn baseline_proxied(&mut self, row: Row) {
        self.latest.proxied[usize::from(row.by_h2load)] = Some(row.outcome.rate());
        self.add(row);
    }

    /// A measured row, compared with the baselines measured last (also
    /// printed to stderr as it comes).
    pub fn add(&mut self, row: Row) {
        let baselines = self.latest;
        eprintln!("{}", line(&row, &baselines));
        if let Some(error) = &row.outcome.first_error {
            eprintln!("  {} calls failed, the first: {error}", row.outcome.errors);
        }
        self.rows.push((row, baselines));
    }

    /// The peak resident memory of each process of `layout`.
    pub fn memory(&mut self, layout: &str, processes: Vec<(String, f64)>) {
        self.memory.push((layout.to_owned(), processes));
    }

    /// Calls that failed, in all.
    pub fn errors(&self) -> u64 {
        self.rows.iter().map(|(row, _)| row.outcome.errors).sum()
    }

    /// The whole report in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Machine: {}\n", self.machine);
        let _ = writeln!(
            out,
            "| scenario | layout | database | in flight | req/s | of echo | of proxied echo | p50 ms | p90 ms | p99 ms | max ms | CPU s / 1k | RSS MiB after | errors |"
        );
        let _ = writeln!(
            out,
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (row, baselines) in &self.rows {
            let _ = writeln!(out, "{}", line(row, baselines));
        }
        let _ = writeln!(out, "\nPeak resident memory (VmHWM):\n");
        let _ = writeln!(out, "| layout | process | MiB |");
        let _ = writeln!(out, "|---|---|---:|");
        for (layout, processes) in &self.memory {
            for (process, mib) in processes {
                let _ = writeln!(out, "| {layout} | {process} | {mib:.1} |");
            }
        }
        out
    }
}

/// `row` as a line of the table, its shares of `baselines`.
fn line(row: &Row, baselines: &Baselines) -> String {
    let o = &row.outcome;
    let rate = o.rate();
    let share =
        |base: Option<f64>| base.map_or("-".into(), |b| format!("{:.0} %", rate / b * 100.0));
    let cpu = if row.cpu_per_1k.is_finite() {
        format!("{:.3}", row.cpu_per_1k)
    } else {
        "-".into()
    };
    format!(
        "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
        row.scenario,
        row.layout,
        row.database,
        row.in_flight,
        rate,
        share(baselines.direct[usize::from(row.by_h2load)]),
        share(baselines.proxied[usize::from(row.by_h2load)]),
        ms(o.quantile(0.5)),
        ms(o.quantile(0.9)),
        ms(o.quantile(0.99)),
        ms(o.quantile(1.0)),
        cpu,
        row.rss_after,
        o.errors,
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
