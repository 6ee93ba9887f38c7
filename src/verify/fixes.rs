//! Verifier rejections a known compiler flag fixes, kept here as data: the flag, the kernel's messages that point
//! at it, and why. `verify` names the flag on such a rejection and (unless `--no-retry`) recompiles and tries it.

/// A clang flag that turns some rejections into loads.
#[derive(Debug, PartialEq, Eq)]
pub struct FlagFix {
    /// Added to the probe's clang command as is (`clang_flags` in probe.toml).
    pub flag: &'static str,
    /// Parts of the verifier's message (the line saying why it rejected) that this flag often fixes.
    pub messages: &'static [&'static str],
    /// Why it helps, for the hint shown when the flag is not tried.
    pub why: &'static str,
}

/// The known fixes, first match wins.
///
/// `-mcpu=v3` (ALU32 + JMP32; clang 14's default `generic` is v1): with v1, clang keeps 32-bit values in 64-bit
/// registers and, once a check on a sign- or zero-extended copy has proved the upper half irrelevant, goes on with
/// the original register, whose bounds the verifier never learnt. The check the verifier then misses shows as
/// one of these messages of the kernel's `kernel/bpf/verifier.c`:
/// - `check_mem_region_access`: "R%d min value is negative, either use unsigned index or do a if (index >=0)
///   check." and "R%d unbounded memory access, make sure to bounds check any such access";
/// - `check_mem_size_reg` (a helper's size argument): "R%d min value is negative, either use unsigned or 'var &=
///   const'" and "R%d unbounded memory access, use 'var &= const' or 'if (var < const)'";
/// - `adjust_ptr_min_max_vals` / `sanitize_check_bounds`: "math between %s pointer and register with unbounded
///   min value is not allowed" and "value %lld makes %s pointer be out of bounds";
/// - "R%d max value is outside of the allowed memory range" (the upper bound lost the same way).
///
/// With v3 the compare and the use are the same 32-bit subregister, whose bounds the verifier tracks (since 5.7).
/// Projects that hit this pass `-mcpu=v3` in their Makefiles and say why nowhere else.
pub const FLAG_FIXES: &[FlagFix] = &[FlagFix {
    flag: "-mcpu=v3",
    messages: &[
        "unbounded memory access",
        "min value is negative",
        "with unbounded min value",
        "pointer be out of bounds",
        "max value is outside of the allowed memory range",
    ],
    why: "32-bit bounds tracking with ALU32 keeps the bounds clang's default -mcpu=v1 code loses",
}];

/// The fix for a rejection with the verifier's `message`, unless the compile already has its flag.
pub fn fix_for(message: &str, compile_flags: &[String]) -> Option<&'static FlagFix> {
    FLAG_FIXES.iter().find(|fix| {
        fix.messages.iter().any(|m| message.contains(m))
            && !compile_flags.iter().any(|f| f == fix.flag)
    })
}

/// A directory name for the objects compiled with `flag` (`-mcpu=v3` → `mcpu-v3`).
pub fn dir_name(flag: &str) -> String {
    flag.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_bounds_messages_point_at_mcpu_v3() {
        for message in [
            "R2 unbounded memory access, make sure to bounds check any such access",
            "R2 unbounded memory access, use 'var &= const' or 'if (var < const)'",
            "R2 min value is negative, either use unsigned or 'var &= const'",
            "R6 min value is negative, either use unsigned index or do a if (index >=0) check.",
            "math between map_value pointer and register with unbounded min value is not allowed",
            "value -2147483648 makes map_value pointer be out of bounds",
            "R1 max value is outside of the allowed memory range",
        ] {
            assert_eq!(
                fix_for(message, &[]).map(|f| f.flag),
                Some("-mcpu=v3"),
                "{message}"
            );
        }
        assert_eq!(
            fix_for("R0 invalid mem access 'map_value_or_null'", &[]),
            None
        );
    }

    #[test]
    fn a_compile_that_has_the_flag_gets_no_fix() {
        let flags = ["-DX=1".to_string(), "-mcpu=v3".to_string()];
        assert_eq!(
            fix_for("R2 unbounded memory access, make sure to", &flags),
            None
        );
    }

    #[test]
    fn flags_make_plain_dir_names() {
        assert_eq!(dir_name("-mcpu=v3"), "mcpu-v3");
    }
}
