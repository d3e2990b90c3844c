//! Plain-words narration with a step counter, a record of every check, and the closing table.

use std::time::Instant;

/// One check the story makes, and whether it held.
pub struct Check {
    pub name: String,
    pub held: bool,
    pub detail: String,
}

pub struct Narrator {
    total: usize,
    step: usize,
    started: Instant,
    pub checks: Vec<Check>,
}

impl Narrator {
    pub fn new(total: usize) -> Self {
        Narrator {
            total,
            step: 0,
            started: Instant::now(),
            checks: Vec::new(),
        }
    }

    /// Announces the next step.
    pub fn step(&mut self, what: &str) {
        self.step += 1;
        let bar: String = (0..self.total)
            .map(|i| if i < self.step { '█' } else { '░' })
            .collect();
        println!("\n{bar} [{}/{}] {what}", self.step, self.total);
    }

    /// A line of explanation under the current step.
    pub fn say(&self, text: &str) {
        println!("    {text}");
    }

    /// Records a check; prints it with ✔ or ✘.
    pub fn check(&mut self, name: &str, held: bool, detail: String) -> bool {
        println!("    {} {name}: {detail}", if held { "✔" } else { "✘" });
        self.checks.push(Check {
            name: name.into(),
            held,
            detail,
        });
        held
    }

    pub fn all_held(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.held)
    }

    /// The summary table.
    pub fn summary(&self) {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        println!("\n{:-<1$}", "", width + 60);
        println!("{:<width$}  result  detail", "check");
        println!("{:-<1$}", "", width + 60);
        for c in &self.checks {
            let mark = if c.held { "ok    " } else { "FAILED" };
            println!("{:<width$}  {mark}  {}", c.name, c.detail);
        }
        println!("{:-<1$}", "", width + 60);
        let held = self.checks.iter().filter(|c| c.held).count();
        println!(
            "{held} of {} checks held in {:.1} s",
            self.checks.len(),
            self.started.elapsed().as_secs_f64()
        );
    }
}
