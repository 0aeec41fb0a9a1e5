//! EventBridge schedule expressions, as far as the local stack needs them: `rate(...)` and the
//! daily or hourly `cron(...)` forms (`cron(M H * * ? *)`, `cron(M * * * ? *)`).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration as Span, Timelike, Utc};

/// How long after `now` the schedule next fires.
pub fn next_delay(expression: &str, now: DateTime<Utc>) -> Result<Duration> {
    let inner = |prefix: &str| {
        expression
            .strip_prefix(prefix)
            .and_then(|e| e.strip_suffix(')'))
    };
    if let Some(rate) = inner("rate(") {
        let (n, unit) = rate
            .trim()
            .split_once(' ')
            .with_context(|| format!("{expression}: expected rate(N unit)"))?;
        let n: u64 = n
            .parse()
            .with_context(|| format!("{expression}: bad count"))?;
        let seconds = match unit.trim_end_matches('s') {
            "minute" => 60,
            "hour" => 3600,
            "day" => 86_400,
            other => bail!("{expression}: unknown unit {other}"),
        };
        return Ok(Duration::from_secs(n.max(1) * seconds));
    }
    let Some(cron) = inner("cron(") else {
        bail!("{expression}: not a rate() or cron() expression");
    };
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let [minute, hour, dom, month, dow, year] = fields[..] else {
        bail!("{expression}: cron needs six fields");
    };
    if !(matches!(dom, "*" | "?") && month == "*" && matches!(dow, "*" | "?") && year == "*") {
        bail!("{expression}: only daily and hourly cron schedules are emulated locally");
    }
    let minute: u32 = minute
        .parse()
        .with_context(|| format!("{expression}: minute must be a number"))?;
    let hour: Option<u32> = match hour {
        "*" => None,
        h => Some(
            h.parse()
                .with_context(|| format!("{expression}: bad hour"))?,
        ),
    };
    let base = now
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    let mut next = base.with_minute(minute).context("minute out of range")?;
    if let Some(hour) = hour {
        next = next.with_hour(hour).context("hour out of range")?;
    }
    while next <= now {
        next += if hour.is_some() {
            Span::days(1)
        } else {
            Span::hours(1)
        };
    }
    Ok((next - now).to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn daily_cron_fires_next_at_its_time() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 7, 0, 0).unwrap();
        let wait = next_delay("cron(30 3 * * ? *)", now).unwrap();
        assert_eq!(wait, Duration::from_secs((20 * 60 + 30) * 60));
        let before = Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap();
        assert_eq!(
            next_delay("cron(30 3 * * ? *)", before).unwrap(),
            Duration::from_secs(1800)
        );
    }

    #[test]
    fn rates_and_refusals() {
        let now = Utc::now();
        assert_eq!(
            next_delay("rate(5 minutes)", now).unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            next_delay("rate(1 day)", now).unwrap(),
            Duration::from_secs(86_400)
        );
        assert!(next_delay("cron(0 12 ? * MON-FRI *)", now).is_err());
        assert!(next_delay("at(2026-01-01T00:00:00)", now).is_err());
    }
}
