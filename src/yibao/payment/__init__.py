"""Mobile payment (医保移动支付) and admission by phone: the person pays a hospital's bill in the app."""
