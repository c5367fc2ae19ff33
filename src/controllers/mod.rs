pub mod partner_account;
