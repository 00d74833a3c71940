//! Charts drawn as SVG on the server: horizontal bars (a funnel, counts
//! by team) and the small bar of an SLA's time used. Labels are text
//! nodes, escaped like everything else.

use maud::{Markup, html};

/// One bar: its label, its value, and the list behind it.
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub href: String,
}

const WIDTH: f64 = 640.0;
const LABEL: f64 = 170.0;
const ROW: f64 = 26.0;

/// Horizontal bars scaled to the largest value; each bar and its number
/// link to `href`.
pub fn bars(class: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let height = ROW * bars.len() as f64 + 4.0;
    let room = WIDTH - LABEL - 60.0;
    html! {
        svg class={ "chart " (class) } xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {WIDTH} {height}")) width=(WIDTH) height=(height) {
            @for (i, b) in bars.iter().enumerate() {
                @let y = ROW * i as f64 + 2.0;
                @let w = (b.value as f64 / max * room).max(if b.value > 0 { 2.0 } else { 0.0 });
                a href=(b.href) {
                    text x=(LABEL - 8.0) y=(y + 17.0) text-anchor="end" { (b.label) }
                    rect.bar x=(LABEL) y=(y + 3.0) width=(format!("{w:.1}")) height=(ROW - 8.0) rx="3" {}
                    text.value x=(LABEL + w + 6.0) y=(y + 17.0) { (b.value) }
                }
            }
        }
    }
}

/// The share of an SLA's time used, as a small bar (red once overdue).
pub fn used_bar(used_us: i64, left_us: i64) -> Markup {
    let total = (used_us + left_us).max(1) as f64;
    let share = (used_us.max(0) as f64 / total).clamp(0.0, 1.0);
    let over = left_us < 0;
    html! {
        svg.used xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 10" width="100" height="10" {
            rect.track x="0" y="0" width="100" height="10" rx="2" {}
            rect class=(if over { "fill over" } else { "fill" }) x="0" y="0"
                width=(format!("{:.1}", share * 100.0)) height="10" rx="2" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_escape_their_labels_and_link_their_lists() {
        let svg = bars(
            "funnel",
            &[
                Bar {
                    label: "<script>".into(),
                    value: 3,
                    href: "/customers?state=a%3Db".into(),
                },
                Bar {
                    label: "none".into(),
                    value: 0,
                    href: "/customers".into(),
                },
            ],
        )
        .into_string();
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains(r#"href="/customers?state=a%3Db""#), "{svg}");
        assert!(svg.contains(">3</text>"), "{svg}");
    }
}
