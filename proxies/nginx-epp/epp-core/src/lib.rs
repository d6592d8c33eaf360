//! The NGINX-independent half of the EPP module: the ext_proc message mapping, endpoint parsing,
//! config value validation, and the gRPC client that runs on a tokio runtime of its own.
//! Nothing here touches nginx, so `cargo test -p epp-core` needs no nginx symbols.

pub mod bbr;
pub mod client;
pub mod endpoint;
pub mod exchange;
pub mod settings;
pub mod tls;

/// Types generated at build time from the repository's proto/ directory.
pub mod pb {
    pub mod envoy {
        pub mod config {
            pub mod core {
                pub mod v3 {
                    tonic::include_proto!("envoy.config.core.v3");
                }
            }
        }
        pub mod extensions {
            pub mod filters {
                pub mod http {
                    pub mod ext_proc {
                        pub mod v3 {
                            tonic::include_proto!("envoy.extensions.filters.http.ext_proc.v3");
                        }
                    }
                }
            }
        }
        pub mod r#type {
            pub mod v3 {
                include!(concat!(env!("OUT_DIR"), "/envoy.r#type.v3.rs"));
            }
        }
        pub mod service {
            pub mod ext_proc {
                pub mod v3 {
                    tonic::include_proto!("envoy.service.ext_proc.v3");
                }
            }
        }
    }
}
