//! The report: one Markdown table of every scenario, with its throughput
//! as a share of both baselines (h2load's rows of h2load's baselines), and
//! the peak memory of each process.

use std::{fmt::Write, time::Duration};

use crate::scenarios::Row;

/// Rows as they are measured, and the memory of each layout.
pub struct Report {
    machine: String,
    /// The echo's rate, from this harness and from h2load.
    direct: [Option<f64>; 2],
    /// The proxied echo's rate, from this harness and from h2load.
    proxied: [Option<f64>; 2],
    rows: Vec<Row>,
    memory: Vec<(String, Vec<(String, f64)>)>,
}

impl Report {
    /// An empty report for `machine`.
    pub fn new(machine: String) -> Self {
        Self {
            machine,
            direct: [None; 2],
            proxied: [None; 2],
            rows: Vec::new(),
            memory: Vec::new(),
        }
    }

    /// The bare echo: the transport's limit.
    pub fn baseline_direct(&mut self, row: Row) {
        self.direct[usize::from(row.by_h2load)] = Some(row.outcome.rate());
        self.add(row);
    }

    /// The proxied echo: the floor of any gateway hop.
    pub fn baseline_proxied(&mut self, row: Row) {
        self.proxied[usize::from(row.by_h2load)] = Some(row.outcome.rate());
        self.add(row);
    }

    /// A measured row (also printed to stderr as it comes).
    pub fn add(&mut self, row: Row) {
        eprintln!("{}", self.line(&row));
        if let Some(error) = &row.outcome.first_error {
            eprintln!("  {} calls failed, the first: {error}", row.outcome.errors);
        }
        self.rows.push(row);
    }

    /// The peak resident memory of each process of `layout`.
    pub fn memory(&mut self, layout: &str, processes: Vec<(String, f64)>) {
        self.memory.push((layout.to_owned(), processes));
    }

    /// Calls that failed, in all.
    pub fn errors(&self) -> u64 {
        self.rows.iter().map(|row| row.outcome.errors).sum()
    }

    fn line(&self, row: &Row) -> String {
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
            share(self.direct[usize::from(row.by_h2load)]),
            share(self.proxied[usize::from(row.by_h2load)]),
            ms(o.quantile(0.5)),
            ms(o.quantile(0.9)),
            ms(o.quantile(0.99)),
            ms(o.quantile(1.0)),
            cpu,
            row.rss_after,
            o.errors,
        )
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
        for row in &self.rows {
            let _ = writeln!(out, "{}", self.line(row));
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

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
