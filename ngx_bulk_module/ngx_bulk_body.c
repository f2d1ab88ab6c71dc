#include "ngx_bulk_body.h"
