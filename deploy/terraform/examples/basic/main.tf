# Example root module: MAOS in cluster mode on an existing PostgreSQL, behind ingress-nginx, with
# OIDC. `terraform init && terraform apply -var database_url=... -var oidc_issuer=...`.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = ">= 2.12.0, < 3.0.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.25.0"
    }
  }
}

provider "kubernetes" {
  config_path    = var.kubeconfig_path
  config_context = var.kubeconfig_context
}

provider "helm" {
  kubernetes {
    config_path    = var.kubeconfig_path
    config_context = var.kubeconfig_context
  }
}

module "maos" {
  source = "../../modules/maos"

  namespace        = "maos"
  image_repository = "ghcr.io/maos-project/maos"
  image_tag        = var.image_tag
  database_mode    = "postgres"
  database_url     = var.database_url
  # One audit signing key for every replica (openssl genpkey -algorithm ed25519 -out audit-signing-key.pem).
  secret_env = { MAOS_AUDIT__SIGNING_KEY = file(var.audit_signing_key_file) }
  replicas   = 3
  autoscaling = {
    enabled     = true
    min         = 3
    max         = 12
    cpu_percent = 70
  }
  auth_mode     = "oidc"
  oidc_issuer   = var.oidc_issuer
  oidc_audience = var.oidc_audience
  ingress_host  = var.ingress_host
  config = {
    workers = { concurrency = 8 }
  }
}
