//! Charts drawn as SVG on the server: horizontal bars (a funnel, counts
//! by team), a line of daily percentages, and the small bar of an SLA's
//! time used. Labels are text nodes, escaped like everything else.

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

/// One line of a percentage chart: a value per day, `None` on a day
/// with no data (the line breaks there).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<Option<f64>>,
}

/// Colours of the lines, in order (the first, "all", is the accent).
const PALETTE: &[&str] = &[
    "#2f5bd3", "#c98a12", "#2b8a4b", "#8e44ad", "#c62f2f", "#16a2b8",
];

/// Lines of daily percentages (0 to 100) with dots, one per series, the
/// first and last day under the axis and a legend on top.
pub fn percent_lines(days: &[String], series: &[Series]) -> Markup {
    let (w, h, left, bottom, top) = (560.0, 190.0, 40.0, 24.0, 26.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let n = days.len().max(2) as f64 - 1.0;
    let x = |i: usize| left + plot_w * i as f64 / n;
    let y = |p: f64| top + plot_h * (1.0 - p.clamp(0.0, 100.0) / 100.0);
    let path = |points: &[Option<f64>]| {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, p) in points.iter().enumerate() {
            match p {
                Some(v) => {
                    d.push_str(&format!(
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        x(i),
                        y(*v)
                    ));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        d
    };
    html! {
        svg.chart.line xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) {
            @for level in [0.0, 50.0, 100.0] {
                line.grid x1=(left) x2=(w - 10.0) y1=(y(level)) y2=(y(level)) {}
                text.axis x=(left - 6.0) y=(y(level) + 4.0) text-anchor="end" { (level) "%" }
            }
            @for (k, s) in series.iter().enumerate() {
                @let colour = PALETTE[k % PALETTE.len()];
                text x=(left + 110.0 * k as f64) y="12" style=(format!("fill:{colour}")) { "● " (s.name) }
                path.series d=(path(&s.points)) style=(format!("stroke:{colour}")) {}
                @for (i, p) in s.points.iter().enumerate() {
                    @if let Some(v) = p {
                        circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(*v))) r="2.5" style=(format!("fill:{colour}")) {
                            title { (s.name) ", " (days.get(i).map_or("", String::as_str)) ": " (format!("{v:.1}")) "%" }
                        }
                    }
                }
            }
            @if let (Some(first), Some(last)) = (days.first(), days.last()) {
                text.axis x=(left) y=(h - 6.0) { (first) }
                text.axis x=(w - 10.0) y=(h - 6.0) text-anchor="end" { (last) }
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

    #[test]
    fn a_line_breaks_over_days_without_data() {
        let days: Vec<String> = ["d1", "d2", "d3"].map(String::from).to_vec();
        let svg = percent_lines(
            &days,
            &[Series {
                name: "<US>".into(),
                points: vec![Some(100.0), None, Some(50.0)],
            }],
        )
        .into_string();
        let d = svg
            .split(" d=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a path");
        // Two separate moves: the pen lifts over the day without data.
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
        assert!(svg.contains("&lt;US&gt;") && !svg.contains("<US>"), "{svg}");
    }
}
