//! Plain aligned text tables: numbers right-aligned, text left-aligned.

use std::io::{self, Write};

pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns to right-align.
    pub numeric: Vec<bool>,
}

impl Table {
    pub fn new(header: Vec<String>, numeric: Vec<bool>) -> Table {
        Table {
            header,
            rows: Vec::new(),
            numeric,
        }
    }

    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let n = self.header.len();
        let mut width = vec![0usize; n];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in row.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |w: &mut dyn Write, row: &[String]| -> io::Result<()> {
            let mut s = String::new();
            for (i, c) in row.iter().enumerate().take(n) {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = width[i] - c.chars().count();
                if self.numeric.get(i).copied().unwrap_or(false) {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    if i + 1 < n {
                        s.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            writeln!(w, "{}", s.trim_end())
        };
        line(w, &self.header)?;
        let rule: Vec<String> = width.iter().map(|&k| "-".repeat(k)).collect();
        line(w, &rule)?;
        for r in &self.rows {
            line(w, r)?;
        }
        Ok(())
    }
}
