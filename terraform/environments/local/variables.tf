variable "endpoint" {
  description = "URL of the embedded AWS (moto); build.sh passes the port it started."
  type        = string
  default     = "http://127.0.0.1:4566"
}

variable "region" {
  description = "Region the embedded AWS answers for."
  type        = string
  default     = "us-east-1"
}
