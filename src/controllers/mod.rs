pub mod backup_policy;
