//! Mutation test of the model loader: a model file a person is editing is
//! broken in every way a hand (or a bad paste) can break it, and whatever
//! it holds, `load` must answer with a model or a list of problems, each on
//! a line of the file. A panic takes down `handoff model check` and, worse,
//! `handoff serve`, so it is never an answer.
//!
//! Each iteration applies one to three random edits (delete a byte range,
//! duplicate or swap lines, insert characters, multi-byte UTF-8 and control
//! characters among them, turn a digit or a unit into a non-ASCII
//! character, put an extreme value in a string, truncate) to one of the
//! example models, then runs the mutant through `load`, through
//! `scale_model_text` (and loads what it writes) and, when it loads,
//! through `render_graph`, each inside `catch_unwind`.
//!
//! The random source is a fixed-seed SplitMix64, so a failure reproduces:
//! the message names the seed, the iteration, the edits and the mutant.

use std::panic::{self, AssertUnwindSafe};

use handoff::engine::model::{GraphFormat, load, render_graph, scale_model_text};
use handoff::loadgen::journeys::Rng;

/// The models to mutate: every example and test model. (The shared
/// `examples/saas.toml` is the same file as the project's.)
const MODELS: &[(&str, &str)] = &[
    ("examples/saas.toml", include_str!("../examples/saas.toml")),
    (
        "tests/models/broken.toml",
        include_str!("models/broken.toml"),
    ),
    ("tests/models/crash.toml", include_str!("models/crash.toml")),
    ("tests/models/fast.toml", include_str!("models/fast.toml")),
    (
        "tests/models/sealed_core.toml",
        include_str!("models/sealed_core.toml"),
    ),
];

/// Change it to explore other mutants; keep the committed one fixed.
const SEED: u64 = 0x4841_4e44_4f46_4621;
/// Enough to find each panic class the loader had (the first of each kind
/// within 1,600 iterations); about 10 s in a debug build on a busy 2-core
/// machine (a debug `load` takes 2 to 3 ms).
const ITERATIONS: u64 = 3_000;

/// Characters an edit inserts: multi-byte UTF-8 (2, 3 and 4 bytes, a
/// combining mark, a right-to-left override), control characters, and
/// the ASCII that TOML and the model's own syntax give meaning to.
const PALETTE: &[char] = &[
    'é', '日', '🦀', '\u{301}', '\u{202e}', 'ß', '\u{0}', '\u{7}', '\u{1b}', '\t', '\r', '\n',
    '\u{7f}', '"', '\'', '[', ']', '{', '}', '=', '.', ',', '#', '%', '*', '-', '_', ':', '\\',
    '0', '1', '9', 'h', 'd', 's', 'm', ' ',
];

/// Values an edit puts inside a quoted string: every one is some limit of
/// a duration, a percentage or a name.
const EXTREMES: &[&str] = &[
    "2é",
    "2日",
    "1🦀",
    "é",
    "",
    "h",
    "0s",
    "99999999d",
    "99999999999999d",
    "9223372036854775807s",
    "9223372036854775808s",
    "36500d",
    "36501d",
    "1e400%",
    "99999999999999999999999%",
    "18446744073709551616%",
    "0.0000001%",
    "100.000000%",
    "100.0000001%",
    "50é",
    "é%",
    ".5%",
    "5.%",
    "*",
    ".",
    "a.b.c",
    "\u{0}",
];

/// Byte offsets of the starts of the text's characters, and its end.
fn boundaries(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect()
}

/// Applies one random edit; returns what it did, for the failure message.
fn mutate(rng: &mut Rng, text: &mut String) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    match rng.below(10) {
        0 => {
            // Delete a byte range: its ends need not be character
            // boundaries, and the broken UTF-8 is read the way a lossy
            // reader would (U+FFFD, itself three bytes).
            let bytes = text.as_bytes();
            let start = rng.below(bytes.len() + 1);
            let len = rng.below(64.min(bytes.len() - start) + 1);
            let mut out = bytes[..start].to_vec();
            out.extend_from_slice(&bytes[start + len..]);
            *text = String::from_utf8_lossy(&out).into_owned();
            format!("delete bytes {start}..{}", start + len)
        }
        1 if !lines.is_empty() => {
            let i = rng.below(lines.len());
            let mut out: Vec<&str> = lines.clone();
            out.insert(i, lines[i]);
            *text = out.concat();
            format!("duplicate line {}", i + 1)
        }
        2 if lines.len() >= 2 => {
            let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out.swap(i, j);
            // A last line without its newline must not glue to the next.
            for l in out.iter_mut() {
                if !l.ends_with('\n') {
                    l.push('\n');
                }
            }
            *text = out.concat();
            format!("swap lines {} and {}", i + 1, j + 1)
        }
        3 => {
            let at = *rng.pick(&boundaries(text));
            let n = 1 + rng.below(4);
            let insert: String = (0..n).map(|_| *rng.pick(PALETTE)).collect();
            text.insert_str(at, &insert);
            format!("insert {insert:?} at byte {at}")
        }
        4 => {
            // A digit becomes a non-ASCII character (`2h` -> `éh`).
            let digits: Vec<usize> = text
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            if digits.is_empty() {
                return "no digit to replace".to_owned();
            }
            let at = *rng.pick(&digits);
            let c = *rng.pick(&['é', '日', '🦀', '\u{301}']);
            text.replace_range(at..at + 1, &c.to_string());
            format!("digit at byte {at} -> {c:?}")
        }
        5 => {
            // A unit (a letter or `%` right after a digit) becomes a
            // non-ASCII character (`2h` -> `2é`, `50%` -> `50日`).
            let units: Vec<usize> = text
                .char_indices()
                .zip(text.chars().skip(1))
                .filter(|((_, c), next)| c.is_ascii_digit() && !next.is_ascii_digit())
                .map(|((i, _), _)| i + 1)
                .filter(|&i| text[i..].starts_with(|c: char| c.is_ascii()))
                .collect();
            if units.is_empty() {
                return "no unit to replace".to_owned();
            }
            let at = *rng.pick(&units);
            let c = *rng.pick(&['é', '日', '🦀', '\u{0}']);
            text.replace_range(at..at + 1, &c.to_string());
            format!("unit at byte {at} -> {c:?}")
        }
        6 => {
            // A quoted string's content becomes an extreme value.
            let quotes: Vec<usize> = text.match_indices('"').map(|(i, _)| i).collect();
            if quotes.len() < 2 {
                return "no string to replace".to_owned();
            }
            let k = rng.below(quotes.len() / 2) * 2;
            let (open, close) = (quotes[k], quotes[k + 1]);
            let value = *rng.pick(EXTREMES);
            text.replace_range(open + 1..close, value);
            format!("string at byte {open} -> {value:?}")
        }
        7 => {
            // Every duration at once becomes one extreme value, so that
            // sums (`within` + `after_breach`) meet their limits too.
            let value = *rng.pick(EXTREMES);
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some((before, after)) = rest.split_once('"') {
                out.push_str(before);
                out.push('"');
                match after.split_once('"') {
                    Some((inside, tail)) => {
                        out.push_str(if is_duration(inside) { value } else { inside });
                        out.push('"');
                        rest = tail;
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
            out.push_str(rest);
            *text = out;
            format!("every duration -> {value:?}")
        }
        8 => {
            let at = *rng.pick(&boundaries(text));
            text.truncate(at);
            format!("truncate at byte {at}")
        }
        _ => {
            // Delete a whole line.
            if lines.is_empty() {
                return "no line to delete".to_owned();
            }
            let i = rng.below(lines.len());
            let mut out = lines.clone();
            out.remove(i);
            *text = out.concat();
            format!("delete line {}", i + 1)
        }
    }
}

/// What a failure is, without the mutant's values: digits and what
/// follows the first `;` or backquote dropped.
fn kind_of(what: &str) -> String {
    what.split([';', '`'])
        .next()
        .unwrap_or(what)
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect()
}

/// Whether a string is written like a duration (`90s`, `14d`).
fn is_duration(s: &str) -> bool {
    s.len() >= 2
        && s.ends_with(['s', 'm', 'h', 'd'])
        && s[..s.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// The panic message of a `catch_unwind` payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

/// Runs `f`, turning a panic into `Err(what it said, prefixed by step)`.
fn guarded<T>(step: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .map_err(|payload| format!("{step} panicked: {}", panic_message(&*payload)))
}

/// Everything the tools do with model text, on one mutant, scaling by
/// `by` when given. `Err` says what went wrong.
fn exercise(text: &str, by: Option<f64>) -> Result<(), String> {
    let n_lines = text.lines().count().max(1);
    match guarded("load", || load("mutant.toml", text))? {
        Ok(model) => {
            for format in [GraphFormat::Mermaid, GraphFormat::Dot] {
                guarded("render_graph", || render_graph(&model, format))?;
            }
        }
        Err(errors) => {
            if errors.0.is_empty() {
                return Err("load failed with no problem listed".to_owned());
            }
            for e in &errors.0 {
                // A newline at the very end opens one more (empty) line.
                if e.line == 0 || e.line > n_lines + 1 {
                    return Err(format!(
                        "problem on line {} of a {n_lines}-line file: {e}",
                        e.line
                    ));
                }
                if e.message.trim().is_empty() {
                    return Err(format!("problem on line {} says nothing", e.line));
                }
            }
        }
    }
    let Some(by) = by else {
        return Ok(());
    };
    let scaled = guarded("scale_model_text", || scale_model_text(text, by))?;
    if let Ok(scaled) = scaled {
        guarded("load of the scaled text", || load("scaled.toml", &scaled))?.ok();
    }
    Ok(())
}

#[test]
fn no_edit_of_a_model_panics_the_loader() {
    // Quiet the default hook while panics are expected and caught.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng::new(SEED);
    // Every failure, and the first mutant of each kind (what it said, its
    // source location stripped of the mutant's own values).
    let mut failures = 0;
    let mut kinds: Vec<(String, u64, &str, Vec<String>, String)> = Vec::new();
    for iteration in 0..ITERATIONS {
        let (file, original) = *rng.pick(MODELS);
        let mut text = original.to_owned();
        let edits: Vec<String> = (0..1 + rng.below(3))
            .map(|_| mutate(&mut rng, &mut text))
            .collect();
        // Every third mutant is also scaled (it costs as much as a load):
        // time compressed (as loadgen does), stretched, and stretched past
        // every limit.
        let by = (iteration % 3 == 0).then(|| [3600.0, 0.5, 1e-300][(iteration / 3) as usize % 3]);
        if let Err(what) = exercise(&text, by) {
            failures += 1;
            let kind = kind_of(&what);
            if !kinds.iter().any(|k| kind_of(&k.0) == kind) {
                kinds.push((what, iteration, file, edits, text));
            }
        }
    }
    panic::set_hook(default_hook);
    let Some((_, iteration, file, edits, text)) = kinds.first() else {
        return;
    };
    let list: Vec<String> = kinds
        .iter()
        .map(|(what, i, file, edits, _)| {
            format!("  iteration {i} ({file}: {}): {what}", edits.join("; "))
        })
        .collect();
    panic!(
        "seed {SEED:#x}: {failures} of {ITERATIONS} mutants failed; the first of each kind:\n{}\n\
         the first, iteration {iteration}, a mutant of {file} by: {}\n\
         ----- mutated text -----\n{text}\n----- end -----",
        list.join("\n"),
        edits.join("; ")
    );
}
