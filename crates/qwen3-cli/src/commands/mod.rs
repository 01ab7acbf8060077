//! One module per subcommand.

pub mod score;
pub mod template;
pub mod tokenize;
