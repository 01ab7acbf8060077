//! One module per subcommand.

pub mod bench;
pub mod chat;
pub mod generate;
pub mod score;
pub mod template;
pub mod tokenize;

/// Rejects `--input-ids` outside the model's vocabulary before the model
/// loads, naming the first such id and the valid range.
pub fn check_input_ids(ids: &[u32], vocab_size: usize) -> anyhow::Result<()> {
    let outside = ids
        .iter()
        .enumerate()
        .find(|&(_, &id)| id as usize >= vocab_size);
    if let Some((index, id)) = outside {
        anyhow::bail!(
            "--input-ids: token id {id} at index {index} is out of range: the model's ids are 0 to {} \
             (vocab_size {vocab_size} in config.json)",
            vocab_size.saturating_sub(1)
        );
    }
    Ok(())
}
