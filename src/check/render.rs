//! How a `Report` is shown: the sectioned ✔/✘ table with fixes, or pretty JSON for scripts.

use anyhow::Result;

use super::Report;

pub fn print(report: &Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print_table(report);
    }
    Ok(())
}

fn print_table(report: &Report) {
    let mut section = "";
    for r in &report.rows {
        if r.section != section {
            section = r.section;
            let title = match section {
                "attach" => "attach kinds (tested by loading, attaching and firing a tiny program; informational)",
                other => other,
            };
            println!("{title}");
        }
        let mark = if r.ok { "✔" } else { "✘" };
        let optional = if !r.ok && !r.required && r.section != "attach" {
            " (optional)"
        } else {
            ""
        };
        println!("  {mark} {:<16} {}{optional}", r.name, r.value);
        if let (false, Some(fix)) = (r.ok, &r.fix) {
            println!("    {:<16} fix: {fix}", "");
        }
    }
    let failed = report.failed_required();
    if failed.is_empty() {
        println!("ready to build probes");
    } else {
        println!("not ready to build probes: missing {}", failed.join(", "));
    }
}
