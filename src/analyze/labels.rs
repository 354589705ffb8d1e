//! Reclassification: rules that give alerts a label and a category of the analyst's choosing.
//!
//! The Operations Group reclassifies codes by what they mean in the field, not by their
//! official name: 81B8 ("Incorrect Polarity") raised by SMETS1 meters is a reverse-current
//! issue. A TOML file holds the rules; the first rule that matches an alert (its code, and
//! optionally the device's generation and model) gives its label and category. An alert no
//! rule matches keeps its official name as label and its catalogue category.
//!
//! ```toml
//! [[rule]]
//! code = "81B8"                 # or a list: ["81B8", "81B9"]
//! generation = "SMETS1"         # optional
//! model = ["S1-ELSTER-AS300"]   # optional, one name or a list
//! label = "reverse current"
//! category = "supply quality"   # optional: the code's catalogue category otherwise
//! ```

use crate::catalogue;
use crate::inventory::Inventory;
use crate::model::{AlertCode, Generation};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use std::path::Path;

/// A label as a group-key value: the code itself for an alert no rule matched (its label is
/// the official name), or `RULE_LABEL | index` for a rule's label. Fits in 19 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelKey(pub u32);

const RULE_LABEL: u32 = 1 << 18;

/// The most labels a rule file may define (they must fit the group key).
pub const MAX_LABELS: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rule: Vec<RuleText>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    code: OneOrMany,
    generation: Option<String>,
    model: Option<OneOrMany>,
    label: String,
    category: Option<String>,
}

#[derive(Clone, Debug)]
struct Rule {
    codes: Vec<AlertCode>,
    generation: Option<Generation>,
    /// Model names; empty means any model.
    models: Vec<String>,
    label: u32,
    category: u8,
}

/// A parsed rule file.
#[derive(Clone, Debug)]
pub struct Labels {
    rules: Vec<Rule>,
    names: Vec<String>,
    /// The catalogue's categories, then the new ones the rules introduce.
    categories: Vec<String>,
}

impl Default for Labels {
    fn default() -> Labels {
        Labels::none()
    }
}

impl Labels {
    /// No rules: every alert keeps its official name and category.
    pub fn none() -> Labels {
        Labels {
            rules: Vec::new(),
            names: Vec::new(),
            categories: catalogue::category_names().to_vec(),
        }
    }

    pub fn load(path: &Path) -> Result<Labels, crate::model::ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            crate::model::ConfigError::new(&origin, format!("cannot read the rule file: {e}"))
        })?;
        Labels::parse(&text).map_err(|e| crate::model::ConfigError::new(origin, e))
    }

    /// Parses a rule file; errors name the rule (1-based) and what is wrong with it.
    pub fn parse(text: &str) -> Result<Labels, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut labels = Labels::none();
        for (i, r) in file.rule.into_iter().enumerate() {
            let at = |m: String| format!("rule {}: {m}", i + 1);
            let codes = r
                .code
                .into_vec()
                .iter()
                .map(|c| {
                    AlertCode::parse(c.as_bytes())
                        .ok_or_else(|| at(format!("`{c}` is not an alert code (81B8, N24)")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if codes.is_empty() {
                return Err(at("`code` lists no code".into()));
            }
            let generation = r
                .generation
                .map(|g| {
                    Generation::parse(g.as_bytes())
                        .ok_or_else(|| at(format!("`{g}` is not a generation (SMETS1, SMETS2)")))
                })
                .transpose()?;
            if r.label.trim().is_empty() {
                return Err(at("`label` is empty".into()));
            }
            let label = intern(&mut labels.names, r.label.trim());
            if labels.names.len() > MAX_LABELS {
                return Err(at(format!("more than {MAX_LABELS} labels")));
            }
            let category = match r.category {
                Some(c) => intern(&mut labels.categories, c.trim()),
                None => u32::MAX,
            };
            if labels.categories.len() > 255 {
                return Err(at("more than 255 categories".into()));
            }
            labels.rules.push(Rule {
                codes,
                generation,
                models: r.model.map(OneOrMany::into_vec).unwrap_or_default(),
                label,
                category: category.min(255) as u8,
            });
        }
        Ok(labels)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The label's text: a rule's label, or the official name (the code when it has none).
    pub fn label_name(&self, key: LabelKey) -> String {
        if key.0 & RULE_LABEL != 0 {
            return self.names[(key.0 & !RULE_LABEL) as usize].clone();
        }
        let code = AlertCode(key.0);
        match catalogue::lookup(code) {
            Some(e) if !e.name.is_empty() => e.name.clone(),
            _ => code.to_string(),
        }
    }

    pub fn category_name(&self, id: u8) -> &str {
        self.categories
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("unknown")
    }

    /// The rules with their model names resolved against an inventory, ready for the fold.
    pub fn bind(&self, inv: &Inventory) -> BoundLabels {
        let mut by_code: FxHashMap<AlertCode, Vec<BoundRule>> = FxHashMap::default();
        for r in &self.rules {
            let models = (!r.models.is_empty()).then(|| {
                r.models
                    .iter()
                    .filter_map(|m| inv.model_id(m))
                    .collect::<Vec<u16>>()
            });
            for &c in &r.codes {
                by_code.entry(c).or_default().push(BoundRule {
                    generation: r.generation,
                    models: models.clone(),
                    label: LabelKey(RULE_LABEL | r.label),
                    category: (r.category != 255).then_some(r.category),
                });
            }
        }
        BoundLabels { by_code }
    }
}

fn intern(v: &mut Vec<String>, s: &str) -> u32 {
    match v.iter().position(|x| x == s) {
        Some(i) => i as u32,
        None => {
            v.push(s.to_string());
            (v.len() - 1) as u32
        }
    }
}

#[derive(Clone, Debug)]
struct BoundRule {
    generation: Option<Generation>,
    /// `None`: any model. `Some(ids)`: one of these inventory models (none if the inventory
    /// lacks the names).
    models: Option<Vec<u16>>,
    label: LabelKey,
    category: Option<u8>,
}

/// Rules indexed by code, for one lookup per alert.
#[derive(Clone, Debug, Default)]
pub struct BoundLabels {
    by_code: FxHashMap<AlertCode, Vec<BoundRule>>,
}

impl BoundLabels {
    /// The label and category of an alert of `code` from a device of `generation` and `model`.
    #[inline]
    pub fn classify(&self, code: AlertCode, generation: Generation, model: u16) -> (LabelKey, u8) {
        if !self.by_code.is_empty()
            && let Some(rules) = self.by_code.get(&code)
        {
            for r in rules {
                let gen_ok = r.generation.is_none_or(|g| g == generation);
                let model_ok = r.models.as_ref().is_none_or(|m| m.contains(&model));
                if gen_ok && model_ok {
                    let cat = r.category.unwrap_or_else(|| catalogue::category_id(code));
                    return (r.label, cat);
                }
            }
        }
        (LabelKey(code.0), catalogue::category_id(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
[[rule]]
code = "81B8"
generation = "SMETS1"
label = "reverse current"
category = "supply quality"

[[rule]]
code = ["8F35", "81B8"]
model = "EDMI-ES2"
label = "meter firmware fault"
"#;

    #[test]
    fn first_matching_rule_wins_and_others_keep_official_names() {
        let l = Labels::parse(RULES).unwrap();
        let inv = Inventory::with_models(&["EDMI-ES2", "S1-ELSTER-AS300"]);
        let b = l.bind(&inv);
        let edmi = inv.model_id("EDMI-ES2").unwrap();
        let elster = inv.model_id("S1-ELSTER-AS300").unwrap();
        let c81b8 = AlertCode::device(0x81B8);
        let (lab, cat) = b.classify(c81b8, Generation::Smets1, elster);
        assert_eq!(l.label_name(lab), "reverse current");
        assert_eq!(l.category_name(cat), "supply quality");
        // The SMETS1 rule comes first, so an SMETS1 EDMI meter is still reverse current.
        assert_eq!(
            l.label_name(b.classify(c81b8, Generation::Smets1, edmi).0),
            "reverse current"
        );
        let (lab, cat) = b.classify(c81b8, Generation::Smets2, edmi);
        assert_eq!(l.label_name(lab), "meter firmware fault");
        assert_eq!(l.category_name(cat), catalogue::category(c81b8));
        let (lab, _) = b.classify(c81b8, Generation::Smets2, elster);
        assert_eq!(l.label_name(lab), "Incorrect Polarity");
        let (lab, _) = b.classify(AlertCode::device(0x8F85), Generation::Smets2, edmi);
        assert_eq!(l.label_name(lab), "8F85");
    }

    #[test]
    fn bad_rules_are_named() {
        let e = Labels::parse("[[rule]]\ncode = \"XYZ\"\nlabel = \"x\"\n").unwrap_err();
        assert!(e.contains("rule 1") && e.contains("`XYZ`"), "{e}");
        let e =
            Labels::parse("[[rule]]\ncode = \"81B8\"\nlabel = \"x\"\ncolour = 1\n").unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = Labels::parse("[[rule]]\ncode = \"81B8\"\nlabel = \"x\"\n[[rule]]\ncode = \"81B8\"\ngeneration = \"SMETS3\"\nlabel = \"y\"\n").unwrap_err();
        assert!(e.contains("rule 2") && e.contains("SMETS3"), "{e}");
    }
}
