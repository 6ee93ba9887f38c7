//! How `compat` prints its matrix: a column per kernel when there are few, a count per program when there are
//! many (a fleet), and under each program its reasons grouped by the kernels they hold for. `--json` prints one
//! object whose shape is documented in the README ("compat --json") and kept stable (`"version": 1`).

use serde_json::{json, Value};

use super::{Matrix, Row};
use crate::targets::kernel::{KernelSource, RUNNING_BTF};
use crate::targets::resolve::{Cell, Status};

/// More kernels than this and the matrix is summarised per program.
const MAX_COLUMNS: usize = 6;
/// Kernels named in one reason line before "and N more".
const MAX_NAMED_KERNELS: usize = 5;

pub fn text(matrix: &Matrix) -> String {
    let mut out = format!(
        "      Compat {} program{} against {} kernel{}\n",
        matrix.rows.len(),
        plural(matrix.rows.len()),
        matrix.kernels.len(),
        plural(matrix.kernels.len())
    );
    let labels: Vec<String> = matrix.rows.iter().map(row_label).collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let columns = matrix.kernels.len() <= MAX_COLUMNS;
    if columns {
        out += &format!("  {:label_width$}", "");
        for kernel in &matrix.kernels {
            out += &format!("  {}", kernel.label);
        }
        out += "\n";
    }
    for ((row, cells), label) in matrix.rows.iter().zip(&matrix.cells).zip(&labels) {
        let worst = cells
            .iter()
            .chain(&row.on_this_machine)
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok);
        if columns {
            out += &format!("  {label:label_width$}");
            for (kernel, cell) in matrix.kernels.iter().zip(cells) {
                let width = kernel.label.chars().count();
                out += &format!("  {:<width$}", cell.status.symbol());
            }
            out += "\n";
        } else {
            let failing = cells.iter().filter(|c| c.status == Status::Fail).count();
            let summary = if failing == 0 {
                format!("all {} kernels", cells.len())
            } else {
                format!("fails on {failing} of {} kernels", cells.len())
            };
            out += &format!("  {} {label}  {summary}\n", worst.symbol());
        }
        if let Some(cell) = &row.on_this_machine {
            for (status, reason) in &cell.reasons {
                out += &format!("      {} on this machine: {reason}\n", status.symbol());
            }
        }
        for (status, reason, kernels) in grouped_reasons(matrix, cells) {
            out += &format!(
                "      {} {}: {reason}\n",
                status.symbol(),
                kernel_list(&kernels, cells.len())
            );
        }
        if worst == Status::Fail {
            if let Some(why) = &row.optional {
                out += &format!("      (optional: {why})\n");
            }
        }
    }
    out
}

fn row_label(row: &Row) -> String {
    let target = row.need.program.attach.target();
    let attach = if target.is_empty() {
        row.need.program.section.clone()
    } else {
        format!("{} {target}", row.need.program.attach.kind())
    };
    format!("{}/{} ({attach})", row.probe, row.need.program.name)
}

/// Each distinct reason of a row with the kernels it holds for, in kernel order of first appearance.
fn grouped_reasons<'m>(
    matrix: &'m Matrix,
    cells: &'m [Cell],
) -> Vec<(Status, &'m str, Vec<&'m str>)> {
    let mut groups: Vec<(Status, &str, Vec<&str>)> = Vec::new();
    for (kernel, cell) in matrix.kernels.iter().zip(cells) {
        for (status, reason) in &cell.reasons {
            match groups
                .iter_mut()
                .find(|(s, r, _)| s == status && r == reason)
            {
                Some(group) => group.2.push(&kernel.label),
                None => groups.push((*status, reason, vec![&kernel.label])),
            }
        }
    }
    groups
}

fn kernel_list(kernels: &[&str], total: usize) -> String {
    if kernels.len() == total && total > 1 {
        return format!("on all {total} kernels");
    }
    let named: Vec<&str> = kernels.iter().take(MAX_NAMED_KERNELS).copied().collect();
    let more = kernels.len() - named.len();
    let mut text = format!("on {}", named.join(", "));
    if more > 0 {
        text += &format!(" and {more} more");
    }
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub fn json(matrix: &Matrix) -> String {
    let cell = |cell: &Cell| {
        json!({
            "status": cell.status.json_name(),
            "reasons": cell.reasons.iter().map(|(status, message)| json!({
                "status": status.json_name(),
                "message": message,
            })).collect::<Vec<Value>>(),
        })
    };
    let kernels: Vec<Value> = matrix
        .kernels
        .iter()
        .map(|k| match &k.source {
            KernelSource::Running => {
                json!({"label": k.label, "source": "running", "path": RUNNING_BTF})
            }
            KernelSource::File(path) => json!({"label": k.label, "source": "file", "path": path}),
        })
        .collect();
    let programs: Vec<Value> = matrix
        .rows
        .iter()
        .zip(&matrix.cells)
        .map(|(row, cells)| {
            json!({
                "probe": row.probe,
                "object": row.object,
                "program": row.need.program.name,
                "section": row.need.program.section,
                "attach": {"kind": row.need.program.attach.kind(), "target": row.need.program.attach.target()},
                "required": row.optional.is_none(),
                "optional_reason": row.optional,
                "this_machine": row.on_this_machine.as_ref().map(cell),
                "kernels": cells.iter().map(cell).collect::<Vec<Value>>(),
            })
        })
        .collect();
    let failures = matrix.failures();
    serde_json::to_string_pretty(&json!({
        "version": 1,
        "kernels": kernels,
        "programs": programs,
        "failures": failures,
        "ok": failures == 0,
    }))
    .unwrap_or_default()
}
