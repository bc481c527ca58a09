//! Slurm options of a study (`executor: {slurm: {...}}`) or of the command line, and the
//! grammar each must follow.
//!
//! A study is input from someone else, and these values reach a cluster account: the runner
//! passes them to `sbatch` as argv (`--partition=…`), never into script text, and each is
//! checked here first, so a value is either refused with the key named or passed verbatim as
//! one argument. The grammars are Slurm's (sbatch(1)), narrowed to what real clusters use.

use serde::{Deserialize, Serialize};

/// Slurm options (`executor: {slurm: {...}}`), used by `--executor slurm`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSpec {
    /// `--partition`: one name or a comma-separated list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `--gres`: `name[:type][:count]`, comma-separated (e.g. `gpu:1`, `gpu:a100:2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gres: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<u32>,
    /// `--mem`: a number with an optional unit K, M, G or T (e.g. `32G`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// `--time`: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M` or `D-H:M:S`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// At most this many tasks of an array at once (`--array=…%K`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// More sbatch options, one option per entry (`--account=lab`, `--qos=high`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
}

/// The longest value accepted for any Slurm option.
pub const MAX_OPTION_LENGTH: usize = 256;

/// Options the runner sets itself; `extra_args` may not override them.
const RUNNER_OWNED: [&str; 10] = [
    "--array",
    "--output",
    "--error",
    "--job-name",
    "--parsable",
    "--wrap",
    "--signal",
    "--requeue",
    "--no-requeue",
    "--chdir",
];
const RUNNER_OWNED_SHORT: [&str; 5] = ["-a", "-o", "-e", "-J", "-D"];

/// A refused value: the key (`partition`, `extra_args[2]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmOptionError {
    pub key: String,
    pub message: String,
}

impl SlurmSpec {
    /// Checks every value against its grammar; the error names the first bad key.
    pub fn validate(&self) -> Result<(), SlurmOptionError> {
        let err = |key: &str, message: String| SlurmOptionError {
            key: key.into(),
            message,
        };
        if let Some(p) = &self.partition {
            check_list(
                "partition",
                p,
                is_name,
                "partition names (letters, digits, - _ .)",
            )
            .map_err(|m| err("partition", m))?;
        }
        if let Some(g) = &self.gres {
            check_list(
                "gres",
                g,
                is_gres,
                "name[:type][:count], e.g. gpu:1 or gpu:a100:2",
            )
            .map_err(|m| err("gres", m))?;
        }
        if let Some(m) = &self.mem {
            check_text(m).map_err(|e| err("mem", e))?;
            if !is_memory(m) {
                return Err(err(
                    "mem",
                    format!(
                        "{m:?}: expected a number with an optional unit K, M, G or T, e.g. 32G"
                    ),
                ));
            }
        }
        if let Some(t) = &self.time {
            check_text(t).map_err(|e| err("time", e))?;
            if time_limit_seconds(t).is_none() {
                return Err(err(
                    "time",
                    format!(
                        "{t:?}: expected a Slurm time limit: M, M:S, H:M:S, D-H, D-H:M or D-H:M:S (e.g. 04:00:00)"
                    ),
                ));
            }
        }
        if self.cpus_per_task == Some(0) {
            return Err(err("cpus_per_task", "must be at least 1".into()));
        }
        if self.max_parallel == Some(0) {
            return Err(err("max_parallel", "must be at least 1".into()));
        }
        for (i, a) in self.extra_args.iter().enumerate() {
            check_extra_arg(a).map_err(|m| err(&format!("extra_args[{i}]"), m))?;
        }
        Ok(())
    }
}

/// Slurm's time formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`, in seconds.
pub fn time_limit_seconds(t: &str) -> Option<u64> {
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (parse_digits(d)?, r),
        None => (0, t),
    };
    let parts: Vec<u64> = rest.split(':').map(parse_digits).collect::<Option<_>>()?;
    let secs = match (t.contains('-'), parts.as_slice()) {
        (false, [m]) => m.checked_mul(60)?,
        (false, [m, s]) => m.checked_mul(60)?.checked_add(*s)?,
        (_, [h, m, s]) => h
            .checked_mul(3600)?
            .checked_add(m.checked_mul(60)?)?
            .checked_add(*s)?,
        (true, [h]) => h.checked_mul(3600)?,
        (true, [h, m]) => h.checked_mul(3600)?.checked_add(m.checked_mul(60)?)?,
        _ => return None,
    };
    days.checked_mul(86400)?.checked_add(secs)
}

fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Printable, single-line and not too long.
fn check_text(v: &str) -> Result<(), String> {
    if v.len() > MAX_OPTION_LENGTH {
        return Err(format!(
            "{} characters; at most {MAX_OPTION_LENGTH} are accepted",
            v.len()
        ));
    }
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{v:?} holds the control character {c:?} (newlines, NUL and the like are refused)"
        ));
    }
    Ok(())
}

fn check_list(
    what: &str,
    v: &str,
    item_ok: fn(&str) -> bool,
    expected: &str,
) -> Result<(), String> {
    check_text(v)?;
    if v.split(',').all(item_ok) {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not a valid {what}; expected comma-separated {expected}"
        ))
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_gres(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() <= 3
        && parts.iter().all(|p| is_name(p))
        && parts[0]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
}

fn is_memory(s: &str) -> bool {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'T']);
    s.len() - digits.len() <= 1 && parse_digits(digits).is_some()
}

/// One option per entry: `--name`, `--name=value` or a short `-x`/`-xvalue`; printable, no
/// whitespace in the name, not one of the options the runner sets itself.
fn check_extra_arg(a: &str) -> Result<(), String> {
    check_text(a)?;
    let name = a.split_once('=').map_or(a, |(n, _)| n);
    let well_formed = if let Some(long) = name.strip_prefix("--") {
        !long.is_empty()
            && long
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    } else if let Some(short) = a.strip_prefix('-') {
        short
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && !short.contains(' ')
    } else {
        false
    };
    if !well_formed {
        return Err(format!(
            "{a:?} is not one sbatch option; expected --name=value (e.g. --account=lab), one option per entry"
        ));
    }
    let short = a.get(..2).unwrap_or(a);
    if RUNNER_OWNED.contains(&name) || (!a.starts_with("--") && RUNNER_OWNED_SHORT.contains(&short))
    {
        return Err(format!(
            "{a:?}: the runner sets {name} itself; it cannot be overridden"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SlurmSpec {
        SlurmSpec {
            partition: Some("gpu,debug".into()),
            gres: Some("gpu:a100:2".into()),
            cpus_per_task: Some(8),
            mem: Some("32G".into()),
            time: Some("1-04:00:00".into()),
            max_parallel: Some(4),
            extra_args: vec![
                "--account=lab".into(),
                "--comment=a b $(c)".into(),
                "-q".into(),
            ],
        }
    }

    #[test]
    fn good_options_pass() {
        assert_eq!(spec().validate(), Ok(()));
        assert_eq!(SlurmSpec::default().validate(), Ok(()));
    }

    #[test]
    fn each_bad_value_names_its_key() {
        type Case = (fn(&mut SlurmSpec), &'static str);
        let cases: Vec<Case> = vec![
            (
                |s| s.partition = Some("debug\ntouch PWNED".into()),
                "partition",
            ),
            (|s| s.partition = Some("a;b".into()), "partition"),
            (|s| s.partition = Some("".into()), "partition"),
            (|s| s.gres = Some("gpu:1 --wrap=x".into()), "gres"),
            (|s| s.gres = Some("$(id)".into()), "gres"),
            (|s| s.mem = Some("32GB".into()), "mem"),
            (|s| s.mem = Some("`id`".into()), "mem"),
            (|s| s.time = Some("4h".into()), "time"),
            (|s| s.time = Some("1:2:3:4".into()), "time"),
            (|s| s.cpus_per_task = Some(0), "cpus_per_task"),
            (|s| s.max_parallel = Some(0), "max_parallel"),
            (
                |s| s.extra_args = vec!["--account=lab\n#SBATCH --x".into()],
                "extra_args[0]",
            ),
            (|s| s.extra_args = vec!["ok".into()], "extra_args[0]"),
            (
                |s| s.extra_args = vec!["--a".into(), "--wrap=id".into()],
                "extra_args[1]",
            ),
            (|s| s.extra_args = vec!["-o/tmp/x".into()], "extra_args[0]"),
            (|s| s.extra_args = vec!["--x\0".into()], "extra_args[0]"),
            (
                |s| s.extra_args = vec![format!("--comment={}", "x".repeat(300))],
                "extra_args[0]",
            ),
        ];
        for (set, key) in cases {
            let mut s = spec();
            set(&mut s);
            let e = s.validate().unwrap_err();
            assert_eq!(e.key, key, "{s:?}: {e:?}");
        }
    }

    #[test]
    fn time_limits_parse_like_slurm() {
        assert_eq!(time_limit_seconds("30"), Some(1800));
        assert_eq!(time_limit_seconds("00:01:00"), Some(60));
        assert_eq!(time_limit_seconds("1-02"), Some(93600));
        assert_eq!(time_limit_seconds("2:30"), Some(150));
        assert_eq!(time_limit_seconds("x"), None);
        assert_eq!(time_limit_seconds("+5"), None);
        assert_eq!(time_limit_seconds("99999999999999999999"), None);
    }
}
