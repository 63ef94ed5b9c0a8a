//! What the images are doing, a line each, and the final table.

use std::io::{IsTerminal, Write};

use super::{Outcome, Plan};

pub fn human_size(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The final table: image, tags, size per platform, index digest, seconds.
pub fn table(plan: &Plan, outcomes: &[Outcome]) -> String {
    let header = ("IMAGE", "TAGS", "SIZE (PER PLATFORM)", "INDEX DIGEST", "SECONDS");
    let mut out = format!("\n{:<44} {:<28} {:<28}  {:<19}  {:>7}\n", header.0, header.1, header.2, header.3, header.4);
    for (image, o) in plan.images.iter().zip(outcomes) {
        let tags = if o.tags.is_empty() { plan.tags.immutable.join(",") } else { o.tags.join(",") };
        let digest = o
            .digest
            .as_deref()
            .map(|d| d.chars().take(19).collect::<String>())
            .unwrap_or_else(|| "(not pushed)".into());
        let sizes: Vec<String> = o.sizes.iter().map(|(arch, size)| format!("{arch} {}", human_size(*size))).collect();
        out.push_str(&format!(
            "{:<44} {:<28} {:<28}  {:<19}  {:>7.1}\n",
            image.reference,
            tags,
            sizes.join(", "),
            digest,
            o.seconds
        ));
    }
    out
}

/// One line per image: redrawn in place on a terminal, a plain line per change otherwise (CI).
pub struct Board {
    names: Vec<String>,
    states: Vec<String>,
    live: bool,
    drawn: bool,
}

impl Board {
    pub fn new(names: Vec<String>) -> Board {
        let states = vec![String::new(); names.len()];
        Board { names, states, live: std::io::stdout().is_terminal() && std::env::var_os("CI").is_none(), drawn: false }
    }

    /// One line per change, never redrawn: for states that change while other output (cargo's)
    /// goes to the terminal.
    pub fn in_lines(names: Vec<String>) -> Board {
        Board { live: false, ..Board::new(names) }
    }

    pub fn set(&mut self, i: usize, state: String) {
        if self.states[i] == state {
            return;
        }
        self.states[i] = state;
        if self.live {
            self.redraw();
        } else {
            println!("{:<12} {}", self.names[i], self.states[i]);
        }
    }

    fn redraw(&mut self) {
        let mut out = std::io::stdout().lock();
        if self.drawn {
            let _ = write!(out, "\x1b[{}A", self.names.len());
        }
        for (name, state) in self.names.iter().zip(&self.states) {
            let _ = writeln!(out, "\x1b[2K{name:<12} {state}");
        }
        let _ = out.flush();
        self.drawn = true;
    }
}
