//! Writing outputs into files: tables as CSV, charts, the HTML report, and the one error type
//! that covers them (`WriteError`), so that a caller handles a failed file and a failed chart
//! alike.
//!
//! Errors keep the words the failure came with: a bare I/O error reads as the system says it
//! (`create_dir`, `write_csv`), and chart errors (`ChartError`, which names the chart's file) pass
//! through unchanged; only the report's files say which path they could not create or write.

use super::OutputFormat;
use super::records::Records;
use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot create {path}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Chart(#[from] super::chart::ChartError),
}

impl WriteError {
    /// `map_err(WriteError::file(path))`: a file that could not be written, named.
    pub fn file(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError {
        let path = path.display().to_string();
        move |source| WriteError::File { path, source }
    }
}

/// Creates a directory and its parents.
pub fn create_dir(dir: &Path) -> Result<(), WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir {
        path: dir.display().to_string(),
        source,
    })
}

/// Writes records as a CSV file.
pub fn write_csv(path: &Path, records: &Records) -> Result<(), WriteError> {
    let write = || -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        records.write(&mut w, OutputFormat::Csv, serde_json::Value::Null)?;
        w.flush()
    };
    write().map_err(WriteError::file(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_files_and_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Records::new(&[("a", false), ("n", true)]);
        r.push(vec!["x".into(), "1".into()]);
        let p = dir.path().join("t.csv");
        write_csv(&p, &r).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,n\nx,1\n");
        let missing = dir.path().join("no/such/dir.csv");
        let e = std::fs::write(&missing, "").map_err(WriteError::file(&missing));
        assert!(e.unwrap_err().to_string().starts_with("cannot write "));
    }
}
