//! Kubernetes resource quantities as numbers: what a memory limit means in bytes, and the RocksDB memory that
//! Restate gets under it on every runtime.

/// The bytes a Kubernetes quantity stands for (`2Gi`, `1.5G`, `512M`, `1e9`, `2000000000`, `500m`), rounded up
/// to a whole byte as Kubernetes rounds memory. `value` is already checked by [`super::validate::quantity`];
/// anything else, or a value beyond `u64`, is an error.
pub fn bytes(value: &str) -> Result<u64, String> {
    scaled(value, 1)
}

/// Billionths of a CPU (Docker's `NanoCpus`) for a CPU quantity: `2`, `250m`, `0.5`.
pub fn nano_cpus(value: &str) -> Result<u64, String> {
    scaled(value, 1_000_000_000)
}

/// `value` times `factor`, rounded up.
fn scaled(value: &str, factor: u128) -> Result<u64, String> {
    let value = value.strip_prefix('+').unwrap_or(value);
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let bad = || format!("`{value}` is not a Kubernetes quantity");
    let too_big = || format!("`{value}` is too large");
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    if fraction.contains('.') {
        return Err(bad());
    }
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let mut numerator: u128 = match significant {
        "" => 0,
        digits => digits.parse().map_err(|_| too_big())?,
    };
    let ten = |exponent: u32| 10u128.checked_pow(exponent).ok_or_else(too_big);
    let mut denominator = ten(u32::try_from(fraction.len()).map_err(|_| too_big())?)?;
    let (scale, divide) = match suffix {
        "" => (1, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        "k" => (ten(3)?, 1),
        "M" => (ten(6)?, 1),
        "G" => (ten(9)?, 1),
        "T" => (ten(12)?, 1),
        "P" => (ten(15)?, 1),
        "E" => (ten(18)?, 1),
        "m" => (1, ten(3)?),
        "u" => (1, ten(6)?),
        "n" => (1, ten(9)?),
        exponent if exponent.starts_with(['e', 'E']) => {
            let exponent: i32 = exponent[1..].parse().map_err(|_| bad())?;
            match exponent >= 0 {
                true => (ten(exponent.unsigned_abs())?, 1),
                false => (1, ten(exponent.unsigned_abs())?),
            }
        }
        _ => return Err(bad()),
    };
    numerator = (numerator.checked_mul(scale))
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(too_big)?;
    denominator = denominator.checked_mul(divide).ok_or_else(too_big)?;
    u64::try_from(numerator.div_ceil(denominator)).map_err(|_| too_big())
}

/// `RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE` for a Restate whose memory limit is `memory_limit`: half of it, in bytes.
/// Restate's default (2 GiB) is all of our default limit, and Restate logs an ERROR at every start when RocksDB
/// may take more than 90% of the limit; it asks for under 50%, as its Helm chart's values do (3Gi of 8Gi).
pub fn rocksdb_memory(memory_limit: &str) -> Result<u64, String> {
    let limit = bytes(memory_limit)?;
    match limit / 2 {
        0 => Err(format!("`{memory_limit}` leaves no memory for RocksDB")),
        half => Ok(half),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_become_bytes() {
        for (quantity, want) in [
            ("2Gi", 2 << 30),
            ("512Mi", 512 << 20),
            ("1.5Gi", 3 << 29),
            ("100M", 100_000_000),
            ("1G", 1_000_000_000),
            ("0.5G", 500_000_000),
            (".5Ki", 512),
            ("2147483648", 2_147_483_648),
            ("+1k", 1000),
            ("1e9", 1_000_000_000),
            ("15E-1", 2),
            ("1500m", 2),
            ("1Ei", 1 << 60),
            ("9E3", 9000),
            ("1E", 1_000_000_000_000_000_000),
        ] {
            assert_eq!(bytes(quantity), Ok(want), "{quantity}");
        }
        for bad in ["", "Gi", "1Zi", "1.2.3", "1e", "99999999999Ei"] {
            assert!(bytes(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(nano_cpus("250m"), Ok(250_000_000));
        assert_eq!(nano_cpus("0.5"), Ok(500_000_000));
    }

    #[test]
    fn rocksdb_gets_half_of_the_limit() {
        assert_eq!(rocksdb_memory("2Gi"), Ok(1 << 30));
        assert_eq!(rocksdb_memory("8Gi"), Ok(4 << 30));
        assert_eq!(rocksdb_memory("3G"), Ok(1_500_000_000));
        assert!(rocksdb_memory("1").is_err());
    }
}
