//! Names shared between controllers.

/// The CDI DataSource a ServerTemplate publishes its golden image under,
/// in the template's namespace. Servers clone from it.
pub fn template_data_source(template: &str) -> String {
    template.to_string()
}
