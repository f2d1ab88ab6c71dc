
#include "ngx_http_bulk_module.h"
