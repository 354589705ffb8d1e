//! Small strings stored once and referred to by a `u16`: failure reasons, versions, models,
//! cohorts and hub models in the side analyses.

/// Strings stored once and referred to by index; index 0 is the empty string ("none" /
/// "unknown").
#[derive(Clone, Debug)]
pub struct Interner {
    pub names: Vec<String>,
    index: rustc_hash::FxHashMap<String, u16>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut i = Interner {
            names: Vec::new(),
            index: Default::default(),
        };
        i.id("");
        i
    }
}

impl Interner {
    /// The index of `s` (trimmed), added if new. Past 65,535 names, everything else is 0.
    pub fn id(&mut self, s: &str) -> u16 {
        let s = s.trim();
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        if self.names.len() > u16::MAX as usize {
            return 0;
        }
        let i = self.names.len() as u16;
        self.names.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    pub fn get(&self, s: &str) -> Option<u16> {
        self.index.get(s.trim()).copied()
    }

    pub fn name(&self, i: u16) -> &str {
        self.names.get(i as usize).map(String::as_str).unwrap_or("")
    }
}
