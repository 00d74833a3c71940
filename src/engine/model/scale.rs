//! Compressing a model's time: every SLA duration divided by a factor, so
//! that an hour-long hand-off can be exercised in a second.
//!
//! Load tests (`handoff loadgen --sla-scale F`) and people trying a model
//! by hand need the node and the tool that checks it to run the *same*
//! scaled model. So the scaling is a rewrite of the model file's text
//! (`handoff model scale FILE --by F` prints it), and loadgen applies the
//! very same rewrite in memory: both sides load identical TOML.
//!
//! Durations in a model are an integer and a unit, so a scaled duration is
//! rounded *up* to a whole second, and never below 1s (a `0s`, allowed for
//! `after_breach`, stays `0s`). Rounding up keeps every `within` inside its
//! (equally scaled) `within_bounds`. Tier percentages are untouched.
//! Comments and layout survive; only the duration strings change.

use toml_edit::{DocumentMut, Item, Value};

use super::{Duration, format_duration, parse_duration};

/// The keys whose values are durations, in SLAs and market overlays.
const DURATION_KEYS: [&str; 3] = ["within", "after_breach", "every"];
/// The key whose value is a list of durations.
const BOUNDS_KEY: &str = "within_bounds";

/// Divides `d` by `by`, rounded up to a whole second (at least 1s unless
/// `d` is zero). Saturates at the largest `i64` of microseconds: a factor
/// below 1 stretches time, and the result may be longer than any model
/// may write ([`Duration::MAX`]); [`scale_model_text`] refuses that.
pub fn scale_duration(d: Duration, by: f64) -> Duration {
    if d.0 <= 0 {
        return d;
    }
    let secs = d.0 as f64 / Duration::MICROS_PER_SEC as f64;
    let scaled = (secs / by).ceil().max(1.0);
    // `as` saturates a float too large for an i64, and `from_secs` the
    // product.
    Duration::from_secs(scaled as i64)
}

/// The model file `text` with every SLA duration (`within`,
/// `within_bounds`, `after_breach`, `every`, in `[slas.*]` and in market
/// overlays) divided by `by`. A value that is not a duration is left for
/// the loader to report. A factor that would make a duration longer than
/// [`Duration::MAX`] is refused, naming the first such duration.
pub fn scale_model_text(text: &str, by: f64) -> Result<String, String> {
    if !(by.is_finite() && by > 0.0) {
        return Err(format!(
            "the scale factor {by} must be a positive number (3600 turns hours into seconds)"
        ));
    }
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("the model is not valid TOML: {e}"))?;
    let mut too_long = None;
    for top in ["slas", "markets"] {
        if let Some(item) = doc.get_mut(top) {
            scale_item(item, by, &mut too_long);
        }
    }
    if let Some(original) = too_long {
        return Err(format!(
            "dividing `{original}` by {by} gives more than the longest duration a model may \
             write, {}: use a larger factor",
            Duration::MAX
        ));
    }
    Ok(doc.to_string())
}

fn scale_item(item: &mut Item, by: f64, too_long: &mut Option<String>) {
    match item {
        Item::Table(t) => {
            for (key, child) in t.iter_mut() {
                scale_entry(key.get(), child, by, too_long);
            }
        }
        Item::ArrayOfTables(a) => {
            for t in a.iter_mut() {
                for (key, child) in t.iter_mut() {
                    scale_entry(key.get(), child, by, too_long);
                }
            }
        }
        Item::Value(v) => scale_value(v, by, too_long),
        Item::None => {}
    }
}

fn scale_entry(key: &str, item: &mut Item, by: f64, too_long: &mut Option<String>) {
    match item {
        Item::Value(v) if DURATION_KEYS.contains(&key) => scale_string(v, by, too_long),
        Item::Value(Value::Array(list)) if key == BOUNDS_KEY => {
            for v in list.iter_mut() {
                scale_string(v, by, too_long);
            }
        }
        other => scale_item(other, by, too_long),
    }
}

/// Recurses into inline tables and arrays (market overlays are written
/// inline: `slas = { first_reply = { within = "2h" } }`).
fn scale_value(v: &mut Value, by: f64, too_long: &mut Option<String>) {
    match v {
        Value::InlineTable(t) => {
            for (key, child) in t.iter_mut() {
                let key = key.get().to_owned();
                match child {
                    Value::Array(list) if key == BOUNDS_KEY => {
                        for v in list.iter_mut() {
                            scale_string(v, by, too_long);
                        }
                    }
                    child if DURATION_KEYS.contains(&key.as_str()) => {
                        scale_string(child, by, too_long)
                    }
                    child => scale_value(child, by, too_long),
                }
            }
        }
        Value::Array(list) => {
            for v in list.iter_mut() {
                scale_value(v, by, too_long);
            }
        }
        Value::String(_)
        | Value::Integer(_)
        | Value::Float(_)
        | Value::Boolean(_)
        | Value::Datetime(_) => {}
    }
}

/// Replaces a duration string by its scaled value, keeping its decor
/// (the comment after it, the spacing). One that would grow past
/// [`Duration::MAX`] is left as it is and noted in `too_long` (the first).
fn scale_string(v: &mut Value, by: f64, too_long: &mut Option<String>) {
    let Some(text) = v.as_str() else {
        return;
    };
    let Ok(d) = parse_duration(text) else {
        return;
    };
    let scaled = scale_duration(d, by);
    if scaled > Duration::MAX {
        too_long.get_or_insert_with(|| text.to_owned());
        return;
    }
    let scaled = format_duration(scaled);
    let decor = v.decor().clone();
    let mut new = Value::from(scaled);
    *new.decor_mut() = decor;
    *v = new;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{MarketId, load};

    const SAAS: &str = include_str!("../../../examples/saas.toml");

    #[test]
    fn durations_round_up_to_whole_seconds() {
        let h = Duration::from_secs(3600);
        assert_eq!(scale_duration(h, 3600.0), Duration::from_secs(1));
        assert_eq!(
            scale_duration(Duration::from_secs(1800), 3600.0),
            Duration::from_secs(1)
        );
        assert_eq!(
            scale_duration(Duration::from_secs(14 * 86400), 3600.0),
            Duration::from_secs(336)
        );
        assert_eq!(
            scale_duration(Duration::from_secs(90), 60.0),
            Duration::from_secs(2)
        );
        assert_eq!(scale_duration(Duration(0), 10.0), Duration(0));
    }

    #[test]
    fn the_scaled_reference_model_loads_with_every_duration_divided() {
        let text = scale_model_text(SAAS, 3600.0).expect("scales");
        let model = load("saas scaled", &text).expect("the scaled model loads");
        let sla = model.sla("access_after_payment").expect("declared");
        let spec = model.sla_spec(sla);
        assert_eq!(spec.within, Duration::from_secs(1));
        assert_eq!(
            spec.within_bounds,
            Some((Duration::from_secs(1), Duration::from_secs(4)))
        );
        // The market overlay (inline) is scaled too: BR's 30m becomes 1s.
        let br = model.market("BR").expect("declared");
        assert_eq!(
            model.rules(br).slas[sla.idx()].within,
            Duration::from_secs(1)
        );
        let de = model.market("DE").expect("declared");
        let reply = model.sla("first_reply").expect("declared");
        assert_eq!(
            model.rules(de).slas[reply.idx()].within,
            Duration::from_secs(2)
        );
        assert_eq!(
            model.rules(MarketId(0)).slas[reply.idx()].within,
            Duration::from_secs(4)
        );
        // Re-escalation: after_breach and every, 2h -> 2s.
        let offsets = &model.rules(MarketId(0)).slas[sla.idx()];
        assert_eq!(offsets.tier_offsets[2], Duration::from_secs(3));
        assert_eq!(offsets.tier_every[2], Some(Duration::from_secs(2)));
        // Comments survive.
        assert!(text.contains("# the ghost-customer hand-off"));
    }

    #[test]
    fn a_bad_factor_is_refused() {
        assert!(scale_model_text(SAAS, 0.0).is_err());
        assert!(scale_model_text(SAAS, f64::NAN).is_err());
    }

    #[test]
    fn a_factor_that_stretches_past_the_longest_duration_is_refused() {
        // Once `Duration::from_secs` overflowed here and panicked.
        assert_eq!(
            scale_duration(Duration::from_secs(3600), 1e-300).0,
            i64::MAX
        );
        let why = scale_model_text(SAAS, 1e-300).expect_err("too long");
        assert!(why.contains("longest duration"), "{why}");
        assert!(why.contains("36500d"), "{why}");
        // Stretching inside the limit is fine: 1h by 0.5 is 2h.
        let text = scale_model_text(SAAS, 0.5).expect("scales");
        let model = load("saas stretched", &text).expect("loads");
        let sla = model.sla("access_after_payment").expect("declared");
        assert_eq!(model.sla_spec(sla).within, Duration::from_secs(7200));
    }

    #[test]
    fn a_non_ascii_unit_is_left_for_the_loader() {
        let text = SAAS.replacen("within = \"1h\"", "within = \"1é\"", 1);
        assert_ne!(text, SAAS);
        let scaled = scale_model_text(&text, 3600.0).expect("scales the others");
        assert!(scaled.contains("within = \"1é\""));
    }
}
