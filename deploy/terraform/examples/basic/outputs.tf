# Outputs of the example root module.

output "maos_service_url" {
  description = "In-cluster URL of the MAOS API."
  value       = module.maos.service_url
}
