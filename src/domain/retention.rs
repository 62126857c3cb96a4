//! How long a room keeps its events.

use super::Invalid;

/// Days a room keeps its events: 1 to [`RetentionDays::MAX`]. A room
/// without one keeps them forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RetentionDays(u32);

impl RetentionDays {
    /// About a hundred years: longer is "forever", which is `null`, and the
    /// bound keeps `now - days` far from the edges of a timestamp.
    pub const MAX: u32 = 36_500;

    pub fn parse(days: i64) -> Result<Self, Invalid> {
        match u32::try_from(days) {
            Ok(d @ 1..=Self::MAX) => Ok(Self(d)),
            _ => Err(Invalid::OutOfRange {
                min: 1,
                max: i64::from(Self::MAX),
            }),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The oldest instant an event may carry at `now` and still be kept.
    pub fn cutoff(self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        now - chrono::Duration::days(i64::from(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::RetentionDays;

    #[test]
    fn days_are_positive_and_bounded() {
        assert!(RetentionDays::parse(0).is_err());
        assert!(RetentionDays::parse(-3).is_err());
        assert!(RetentionDays::parse(i64::from(RetentionDays::MAX) + 1).is_err());
        assert!(RetentionDays::parse(i64::MAX).is_err());
        assert_eq!(RetentionDays::parse(30).map(RetentionDays::get), Ok(30));
        assert_eq!(
            RetentionDays::parse(i64::from(RetentionDays::MAX)).map(RetentionDays::get),
            Ok(RetentionDays::MAX)
        );
    }
}
