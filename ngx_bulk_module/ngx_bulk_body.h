
/*
 * ngx_bulk: request bodies in JSON or YAML (placeholder).
 */


#ifndef _NGX_BULK_BODY_H_INCLUDED_
#define _NGX_BULK_BODY_H_INCLUDED_

#endif /* _NGX_BULK_BODY_H_INCLUDED_ */
