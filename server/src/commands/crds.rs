//! `pkiplane crds`: the CustomResourceDefinitions, printed or written to a directory.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory (the repository keeps them in crds/)
    /// instead of printing all of them to standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &CrdsArgs) -> Result<()> {
    match &args.out {
        Some(dir) => {
            for path in pkiplane_api::crds::write_crds(dir)? {
                eprintln!("wrote {}", path.display());
            }
        }
        None => print!("{}", pkiplane_api::crds::crds_yaml()),
    }
    Ok(())
}
