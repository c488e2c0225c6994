# Inputs of the example root module.

variable "kubeconfig_path" {
  description = "Path of the kubeconfig file with access to the target cluster."
  type        = string
  default     = "~/.kube/config"
}

variable "kubeconfig_context" {
  description = "Context of the kubeconfig to use; null = the current context."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "MAOS image tag to deploy (pin a release, e.g. 0.1.0)."
  type        = string
}

variable "database_url" {
  description = "PostgreSQL URL for MAOS (postgres://user:password@host:5432/maos?sslmode=require)."
  type        = string
  sensitive   = true
}

variable "audit_signing_key_file" {
  description = "Ed25519 private key (PKCS#8 PEM) every replica signs audit checkpoints with, e.g. from openssl genpkey -algorithm ed25519."
  type        = string
  default     = "audit-signing-key.pem"
}

variable "oidc_issuer" {
  description = "Issuer URL of your identity provider."
  type        = string
}

variable "oidc_audience" {
  description = "Audience configured for the MAOS API in the identity provider."
  type        = string
}

variable "ingress_host" {
  description = "Public host name of MAOS."
  type        = string
}
