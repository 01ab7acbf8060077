//! One module per subcommand.

pub mod bench;
pub mod chat;
pub mod generate;
pub mod score;
pub mod template;
pub mod tokenize;
