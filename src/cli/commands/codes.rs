//! `fleetwatch codes [CODE|WORD]`: explain alert codes from the embedded catalogue.

use super::Status;
use fleetwatch::catalogue;
use fleetwatch::model::AlertCode;
use fleetwatch::render::table::Table;
use std::io::Write;

pub fn run(query: Option<&str>) -> anyhow::Result<Status> {
    let entries: Vec<&catalogue::Entry> = match query {
        None => catalogue::entries().iter().collect(),
        Some(q) => {
            let hits = catalogue::search(q);
            if hits.is_empty() {
                if let Some(code) = AlertCode::parse(q.as_bytes()) {
                    // A valid code the catalogue lacks: say so rather than "not found".
                    super::stdout_write(|w| {
                        writeln!(w, "{code}  {}", catalogue::describe(code))?;
                        writeln!(
                            w,
                            "  category: {} (codes outside the catalogue are kept and counted under `unknown`)",
                            catalogue::category(code)
                        )
                    })?;
                    return Ok(Status::Ok);
                }
                eprintln!(
                    "no code, name or category matches `{q}`; try `fleetwatch codes` for the full list"
                );
                return Ok(Status::Failed);
            }
            hits
        }
    };
    let mut t = Table::new(
        vec!["code".into(), "category".into(), "name".into()],
        vec![false, false, false],
    );
    for e in entries {
        t.rows.push(vec![
            e.code.to_string(),
            catalogue::category(e.code).to_string(),
            catalogue::describe(e.code).to_string(),
        ]);
    }
    super::stdout_write(|w| t.write(w))?;
    Ok(Status::Ok)
}
