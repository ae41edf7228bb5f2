//! Multi-row statements in few shapes.
//!
//! A statement that names n rows (`INSERT … VALUES (…), (…)`, `WHERE uuid IN
//! (?, ?, …)`) is different SQL for every n, and sqlx keeps each prepared
//! statement in a per-connection cache of 100. Group commits write batches
//! of any size up to 128, so their statements came in hundreds of shapes:
//! each parsed afresh, and the largest, prepared for a hundred rows, holding
//! tens of KiB of SQLite memory per connection until evicted (`orgplane
//! dev` held 10.8 MB of prepared statements after the run admission
//! benchmark, and fragmented the allocator's arenas as they churned; see
//! `BENCHMARKS.md`). Cut into chunks whose sizes are powers of two, n rows
//! are at most log₂(n) + 1 statements of at most eight shapes for 128.

/// Splits `rows` into chunks whose sizes are distinct powers of two, largest
/// first (100 rows: 64, 32, 4), keeping their order.
pub fn power_of_two_chunks<T>(rows: Vec<T>) -> Vec<Vec<T>> {
    let mut chunks = Vec::new();
    let mut rest = rows.into_iter();
    let mut left = rest.len();
    while left > 0 {
        let size = 1 << left.ilog2();
        chunks.push(rest.by_ref().take(size).collect());
        left -= size;
    }
    chunks
}

/// Pads the values of an `IN (…)` list to the next power of two by
/// repeating the last one, which leaves the condition as it was and its
/// statement in one of few shapes.
pub fn padded_in_list<T: Clone>(mut values: Vec<T>) -> Vec<T> {
    if let Some(last) = values.last().cloned() {
        values.resize(values.len().next_power_of_two(), last);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_distinct_powers_of_two_in_order() {
        let chunks = power_of_two_chunks((0..100).collect());
        let sizes: Vec<_> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [64, 32, 4]);
        assert_eq!(chunks.concat(), (0..100).collect::<Vec<_>>());
        assert_eq!(power_of_two_chunks(vec![1]), [vec![1]]);
        assert!(power_of_two_chunks(Vec::<u8>::new()).is_empty());
        let shapes: std::collections::BTreeSet<usize> = (1..=128)
            .flat_map(|n| power_of_two_chunks(vec![0; n]))
            .map(|chunk| chunk.len())
            .collect();
        assert_eq!(shapes.len(), 8, "1, 2, 4, …, 128");
    }

    #[test]
    fn in_lists_pad_with_their_last_value() {
        assert_eq!(padded_in_list(vec!["a", "b", "c"]), ["a", "b", "c", "c"]);
        assert_eq!(padded_in_list(vec!["a", "b"]), ["a", "b"]);
        assert_eq!(padded_in_list(vec!["a"; 5]).len(), 8);
        assert!(padded_in_list(Vec::<&str>::new()).is_empty());
    }
}
