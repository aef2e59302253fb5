//! The figures of one run, printed as the Markdown tables `bench/README.md` keeps.

use crate::load::Summary;

#[derive(Default)]
pub struct Report {
    throughput: Vec<String>,
    ratios: Vec<String>,
    latencies: Vec<String>,
    memory: Vec<String>,
    notes: Vec<String>,
}

impl Report {
    pub fn throughput(&mut self, name: &str, summary: &Summary, cpu: &str) {
        self.throughput.push(format!(
            "| {name} | {} | {} | {:.0}/s | {:.2} | {:.2} | {cpu} |",
            summary.requests,
            summary.errors,
            summary.rate(),
            summary.ms(0.5),
            summary.ms(0.99),
        ));
    }

    /// A rate measured without per-item latencies (jobs, deliveries).
    pub fn rate(&mut self, name: &str, count: u64, seconds: f64, cpu: &str) {
        self.throughput.push(format!(
            "| {name} | {count} | 0 | {:.0}/s | | | {cpu} |",
            count as f64 / seconds.max(1e-9)
        ));
    }

    pub fn ratio(&mut self, name: &str, value: f64, target: &str) {
        self.ratios.push(format!("| {name} | {value:.2} | {target} |"));
    }

    pub fn latency(&mut self, name: &str, summary: &Summary, target: &str) {
        self.latencies.push(format!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {target} |",
            summary.requests,
            summary.ms(0.5),
            summary.ms(0.99),
            summary.ms(1.0),
        ));
    }

    pub fn memory(&mut self, process: &str, when: &str, mib: f64) {
        self.memory.push(format!("| {process} | {when} | {mib:.1} |"));
    }

    pub fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    pub fn print(&self) {
        let table = |title: &str, header: &str, rows: &[String]| {
            if rows.is_empty() {
                return;
            }
            println!("\n### {title}\n\n{header}");
            for row in rows {
                println!("{row}");
            }
        };
        table(
            "Throughput",
            "| load | count | errors | rate | p50 ms | p99 ms | CPU split |\n| --- | --- | --- | --- | --- | --- | --- |",
            &self.throughput,
        );
        table("Ratios", "| ratio | value | target |\n| --- | --- | --- |", &self.ratios);
        table(
            "Latency",
            "| path | count | p50 ms | p99 ms | max ms | target |\n| --- | --- | --- | --- | --- | --- |",
            &self.latencies,
        );
        table("Resident memory", "| process | when | MiB |\n| --- | --- | --- |", &self.memory);
        for note in &self.notes {
            println!("\n{note}");
        }
    }
}
