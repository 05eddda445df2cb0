pub mod mac;
pub mod sig;
