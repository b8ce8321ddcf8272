terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 7.0.0"
    }
  }

  # One state per environment in S3, locked with S3's native lock file (Terraform >= 1.11).
  # Bucket and region come from backend.hcl (see backend.hcl.example), so no account details are in
  # the code: terraform init -backend-config=backend.hcl (./build.sh plan prod does this).
  backend "s3" {
    key          = "coachflow/prod/terraform.tfstate"
    use_lockfile = true
    encrypt      = true
  }
}
