//! Resuming a killed `cooccur` or `build`: the record each commit leaves in the working
//! file (`vecfmt::accum::RESUME_KEY`), and the checks that a resumed run reads the same
//! inputs with the same options.
//!
//! The record holds the engine, the options that decide the result, each input's identity
//! (its path, size and modification time) and the reader's [`Position`] at the commit:
//! every block before it is in the file, and none after it. A resumed run opens the
//! working file where its last commit left it, and reads on from the position.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::{json, Map, Value};
use vecfmt::accum::{RESUME_KEY, WORKING_KEY};

use crate::pool::Position;
use crate::{Error, Input, Result};

/// Why an output cannot be resumed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotResumable {
    /// The file is finished.
    #[error("it is finished; there is nothing to resume")]
    Finished,
    /// A working file without a record of this engine: written by another engine, or
    /// by a version of vecfmt that did not record one.
    #[error("it holds no checkpoint of a {engine} run")]
    NoRecord { engine: &'static str },
}

/// What a resumed run starts from.
#[derive(Debug, Clone)]
pub(crate) struct Resumed {
    pub position: Position,
    /// The engine's own counters at the commit (tokens, triplets...).
    pub counters: Map<String, Value>,
}

/// The inputs as a record names them: canonical path, size and modification time. A
/// stream cannot be read again from the middle, so it has none.
pub(crate) fn identify(inputs: &[Input]) -> Option<Vec<Value>> {
    inputs
        .iter()
        .map(|i| {
            let p = i.file_path()?;
            let m = std::fs::metadata(p).ok();
            let modified = m
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()));
            let path = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            Some(json!({
                "path": path.display().to_string(),
                "bytes": m.map(|m| m.len()),
                "modified": modified,
            }))
        })
        .collect()
}

/// The record a commit writes.
pub(crate) fn record(
    engine: &str,
    settings: &Value,
    inputs: &[Value],
    position: &Position,
    counters: Map<String, Value>,
) -> Value {
    json!({
        "engine": engine,
        "settings": settings,
        "inputs": inputs,
        "position": position.to_json(),
        "counters": counters,
    })
}

/// Where a run asked to resume `output` starts: `None` when there is no output yet (the
/// run starts afresh), or the record's position once the inputs and the settings are
/// checked against it. Refuses streams, a finished output, and any difference.
pub(crate) fn start(
    output: &Path,
    engine: &'static str,
    settings: &Value,
    inputs: &[Input],
) -> Result<Option<Resumed>> {
    if let Some(stream) = inputs.iter().find(|i| !i.is_file()) {
        return Err(Error::ResumeStream { input: stream.name() });
    }
    if !output.exists() {
        return Ok(None);
    }
    let not = |why| Error::NotResumable {
        output: output.to_owned(),
        why,
    };
    let m = vecfmt::Matrix::open(output)?;
    let meta = m.metadata().cloned().unwrap_or(Value::Null);
    drop(m);
    if meta.get(WORKING_KEY).is_none() {
        return Err(not(NotResumable::Finished));
    }
    let rec = meta
        .get(RESUME_KEY)
        .filter(|r| r.get("engine").and_then(Value::as_str) == Some(engine));
    let (Some(rec), Some(now)) = (rec, identify(inputs)) else {
        return Err(not(NotResumable::NoRecord { engine }));
    };
    let position = rec.get("position").and_then(Position::from_json);
    let (Some(position), Some(was)) = (position, rec.get("settings").and_then(Value::as_object)) else {
        return Err(not(NotResumable::NoRecord { engine }));
    };
    let differs = |what: String, was: &Value, now: &Value| Error::ResumeMismatch {
        output: output.to_owned(),
        what,
        was: shown(was),
        now: shown(now),
    };
    let settings = settings.as_object().expect("settings are an object");
    for (k, v) in settings {
        let w = was.get(k).unwrap_or(&Value::Null);
        if w != v {
            return Err(differs(format!("option {k:?}"), w, v));
        }
    }
    let was_inputs = rec.get("inputs").and_then(Value::as_array).cloned().unwrap_or_default();
    if was_inputs.len() != now.len() {
        return Err(differs(
            "inputs".into(),
            &json!(format!("{} inputs", was_inputs.len())),
            &json!(format!("{} inputs", now.len())),
        ));
    }
    for (k, (w, n)) in was_inputs.iter().zip(&now).enumerate() {
        for (field, what) in [("path", "path"), ("bytes", "size"), ("modified", "modification time")] {
            if w.get(field) != n.get(field) {
                let name = n.get("path").and_then(Value::as_str).unwrap_or("?");
                return Err(differs(
                    format!("input {} ({name}): {what}", k + 1),
                    w.get(field).unwrap_or(&Value::Null),
                    n.get(field).unwrap_or(&Value::Null),
                ));
            }
        }
    }
    let counters = rec
        .get("counters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    Ok(Some(Resumed { position, counters }))
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        v => v.to_string(),
    }
}

/// A path option as the settings record it: canonical, so that a run from another
/// directory compares equal.
pub(crate) fn path_setting(p: Option<&PathBuf>) -> Value {
    match p {
        Some(p) => json!(p.canonicalize().unwrap_or_else(|_| p.clone()).display().to_string()),
        None => Value::Null,
    }
}
