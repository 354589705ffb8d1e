//! A configuration the user wrote (a rule file, a rule or size on the command line) that cannot
//! be used: where it is, at which line when known, and what is wrong, in words that say how to
//! fix it.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file, or the option (`--cohort-size`), the configuration came from.
    pub origin: String,
    pub line: Option<u64>,
    pub message: String,
}

impl ConfigError {
    pub fn new(origin: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: origin.into(),
            line: None,
            message: message.into(),
        }
    }

    pub fn at_line(mut self, line: u64) -> ConfigError {
        self.line = Some(line);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_where_and_what() {
        let e = ConfigError::new("rules.toml", "rule 2: no `code`").at_line(7);
        assert_eq!(e.to_string(), "rules.toml:7: rule 2: no `code`");
        assert_eq!(
            ConfigError::new("--cohort-size", "`FOC` has no size").to_string(),
            "--cohort-size: `FOC` has no size"
        );
    }
}
